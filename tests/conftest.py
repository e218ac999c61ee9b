"""Shared pytest setup: quiet TensorFlow and make tests importable from a clean clone."""

import os

# Set before TensorFlow is imported anywhere so its C++ start-up chatter stays out of test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top

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


def pytest_configure(config):
    # TFP 0.25 compares versions with distutils at import; not ours to fix.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:distutils Version classes are deprecated:DeprecationWarning")
