"""The embedded services' directory is claimed by one run at a time."""

import pytest

from controlplane.embedded import DirectoryInUse, EmbeddedServices


def test_a_second_run_on_the_same_directory_is_refused_until_the_first_ends(tmp_path):
    first, second = EmbeddedServices(tmp_path), EmbeddedServices(tmp_path)
    first._claim_directory()
    with pytest.raises(DirectoryInUse, match="in use by pid"):
        second._claim_directory()
    first.stop()
    second._claim_directory()
    second.stop()
