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


def pytest_collection_modifyitems(config, items):
    """Drops tf.test.TestCase's deprecated `test_session` helper.

    pytest collects it as a test because of its name, and it always skips,
    which would make every report show skips that test nothing.
    """
    del config
    items[:] = [item for item in items if item.name != "test_session"]


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
        "markers", "slurm: runs jobs on a real single-node Slurm started by "
        "the slurm_cluster fixture (deselect with -m 'not slurm').")
    # TFP 0.25 compares versions with distutils at import; not ours to fix.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:distutils Version classes are deprecated:DeprecationWarning")
