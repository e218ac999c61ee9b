"""Shared pytest setup: quiet TensorFlow and make tests importable from a clean clone."""

import os
import shutil

# Set before TensorFlow is imported anywhere so its C++ start-up chatter stays out of test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

from tests import slurm_cluster as slurm_cluster_lib  # pylint: disable=g-import-not-at-top

# absltest helpers such as create_tempdir read absl flags (--test_tmpdir);
# pytest does not parse them, so accept the defaults once.
if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


# The tests left out of the fast tier (`pytest -m "not slow"`): each took
# more than 5 seconds on two CPU cores, or belongs to a class whose set-up
# does (trains a model, runs a program): whole programs run in subprocesses,
# training to the end and resuming. Given as "file::Class" (every test of
# the class) or "file::Class::test" (parameterised variants included).
# Tests marked `slurm` are slow too. A new test that takes longer belongs here.
SLOW_TESTS = (
    "test_base.py::ResumeTest::test_sigterm_checkpoints_and_resume_matches_uninterrupted_run",
    "test_base.py::XlaTest::test_jit_compiled_vae_step_trains",
    "test_benchmark.py::BenchmarkProgramTest",
    "test_checkpointing.py::CheckpointingTest::test_failed_save_removes_its_files_and_keeps_the_previous",
    "test_disentangling_distribute.py::DisentanglingMirroredTest",
    "test_distribute.py::MirroredStrategyTest",
    "test_elbo.py::ElboTrainerTest::test_training_lowers_the_loss",
    "test_elbo.py::OptimizerKindsTest::test_keras_3_adam_trains_and_resumes_exactly",
    "test_evaluate.py::EvaluateProgramTest",
    "test_evaluate.py::ResumableEvaluationTest",
    "test_evaluate.py::SampleQualityInProgramTest",
    "test_evaluate_disentanglement.py::EvaluateDisentanglementTest",
    "test_export.py::ExportSavedModelTest::test_fresh_process_without_the_package_runs_every_signature",
    "test_factorvae_trainer.py::FactorVaeTrainerTest::test_trains_evaluates_and_resumes_exactly",
    "test_folder_datasets.py::ProgramsTest",
    "test_generate.py::GenerateProgramTest",
    "test_iwae_trainer.py::IwaeTrainerTest::test_resume_continues_exactly",
    "test_iwae_trainer.py::IwaeTrainerTest::test_trains_and_logs_the_bound",
    "test_iwae_trainer.py::IwaeTrainerTest::test_two_level_trainer_trains_both_layers",
    "test_losses.py::ElboTermsTest::test_sampled_latent_is_a_draw_from_the_posterior",
    "test_mixed_precision.py::ProgramTest",
    "test_multi_worker.py::TrainProgramTest",
    "test_multi_worker.py::TwoWorkersTest",
    "test_plugin_trainer.py::PluginTrainerTest",
    "test_run_safety.py::KillDuringSaveTest",
    "test_run_safety.py::PresetsFromAnotherDirectoryTest",
    "test_run_safety.py::RefusedLaunchTest",
    "test_stop_signals.py::EarlySignalProgramTest",
    "test_submit.py::RequeueTest",
    "test_tcvae_trainer.py::BetaTcvaeTrainerTest::test_trains_evaluates_and_resumes_exactly",
    "test_toy2d_program.py::Toy2dProgramTest",
    "test_tracing.py::NoRetracingTest::test_a_resumed_run_traces_once_more_and_then_never",
    "test_train.py::BadInputTest",
    "test_train.py::RealMnistTest",
    "test_train.py::SignalTest",
    "test_train_families.py::TrainFamiliesTest",
    "test_train_vaegan.py::TrainVaeGanProgramTest",
    "test_vaegan_trainer.py::VaeGanTrainerTest::test_balancing_never_retraces_the_step",
    "test_vaegan_trainer.py::VaeGanTrainerTest::test_resume_continues_exactly",
    "test_vaegan_trainer.py::VaeGanTrainerTest::test_training_logs_and_evaluation",
    "test_vaegan_trainer.py::VaeGanTrainerTest::test_unconditional_variant_trains",
)


def _is_slow(item) -> bool:
    node = item.nodeid.split("tests/", 1)[-1]
    if item.get_closest_marker("slurm") is not None:
        return True
    for prefix in SLOW_TESTS:
        if node == prefix or node.startswith(prefix + "::"):
            return True
        # A test's parameterised variants: test_x0, test_x1, test_x[a].
        if (
            prefix.count("::") == 2
            and node.startswith(prefix)
            and (node[len(prefix) :][:1].isdigit() or node[len(prefix) :][:1] == "[")
        ):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Marks the slow tests (SLOW_TESTS), and drops tf.test.TestCase's
    deprecated `test_session` helper: pytest collects it as a test because
    of its name, and it always skips, which would make every report show
    skips that test nothing."""
    del config
    items[:] = [item for item in items if item.name != "test_session"]
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real single-node Slurm (tests/slurm_cluster.py), started once for
    every test marked `slurm` that asks for it; they skip, saying why, where
    Slurm cannot be had, unless VAE_REQUIRE_SLURM=1 (as .ci/run sets it
    when root), which makes that a failure."""
    cluster = slurm_cluster_lib.SlurmCluster()
    try:
        cluster.start()
    except slurm_cluster_lib.SlurmUnavailable as error:
        cluster.stop()
        message = f"No Slurm for the end-to-end tests: {error}"
        if os.environ.get("VAE_REQUIRE_SLURM") == "1":
            pytest.fail(message + " (VAE_REQUIRE_SLURM=1)", pytrace=False)
        pytest.skip(message)
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.root, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: left out of the fast tier (-m 'not slow'); see "
        "SLOW_TESTS in tests/conftest.py.",
    )
    config.addinivalue_line(
        "markers",
        "slurm: runs jobs on a real single-node Slurm started by "
        "the slurm_cluster fixture (deselect with -m 'not slurm').",
    )
    # TFP 0.25 compares versions with distutils at import; not ours to fix.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:distutils Version classes are deprecated:DeprecationWarning",
    )
