"""Pure logic of serve_app.core.job_keys: job ids and the store key layout."""

from __future__ import annotations

import pytest

from serve_app.core import job_keys as keys
from serve_app.core.errors import NotFound

JOB_ID = "0123456789abcdef0123456789abcdef"

BAD_IDS = [
    "",
    JOB_ID.upper(),
    JOB_ID[:31],
    JOB_ID + "0",
    "../x",
    "../" + JOB_ID[3:],
    JOB_ID[:31] + "g",
    JOB_ID + "\n",
    " " + JOB_ID,
    JOB_ID[:16] + "/" + JOB_ID[17:],
]


# ids and keys


def test_check_job_id_accepts_32_lowercase_hex() -> None:
    assert keys.check_job_id(JOB_ID) == JOB_ID


@pytest.mark.parametrize("bad", BAD_IDS)
def test_check_job_id_rejects_everything_else(bad: str) -> None:
    with pytest.raises(NotFound) as info:
        keys.check_job_id(bad)
    assert "32 hexadecimal digits" in info.value.message


def test_keys() -> None:
    assert keys.job_prefix(JOB_ID) == f"jobs/{JOB_ID}/"
    assert keys.state_key(JOB_ID) == f"jobs/{JOB_ID}/state.json"
    assert keys.input_key(JOB_ID) == f"jobs/{JOB_ID}/input.pdf"
    assert keys.result_key(JOB_ID) == f"jobs/{JOB_ID}/result.json"
    assert keys.page_key(JOB_ID, 7, "png") == f"jobs/{JOB_ID}/pages/00007.png"
    assert keys.page_key(JOB_ID, 123, "json") == f"jobs/{JOB_ID}/pages/00123.json"
    assert keys.active_key(JOB_ID) == f"active/{JOB_ID}"
    assert keys.active_key(JOB_ID).startswith(keys.ACTIVE_PREFIX)
    assert keys.pages_key(JOB_ID) == f"jobs/{JOB_ID}/pages.json"
    assert keys.pages_prefix(JOB_ID) == f"jobs/{JOB_ID}/pages/"
    assert not keys.pages_key(JOB_ID).startswith(keys.pages_prefix(JOB_ID))  # listings of pages/ skip it
    assert keys.quarantine_key("whatever") == "quarantine/whatever"


@pytest.mark.parametrize("bad", ["../x", JOB_ID.upper(), "", JOB_ID + "\n"])
def test_keys_reject_bad_ids(bad: str) -> None:
    for make in (
        keys.job_prefix,
        keys.state_key,
        keys.input_key,
        keys.result_key,
        keys.active_key,
        keys.pages_key,
    ):
        with pytest.raises(NotFound):
            make(bad)
    with pytest.raises(NotFound):
        keys.page_key(bad, 1, "json")


def test_done_pages_only_counts_json_pages() -> None:
    prefix = f"jobs/{JOB_ID}/pages/"
    listing = [
        prefix + "00001.json",
        prefix + "00001.png",
        prefix + "00002.png",
        prefix + "00003.json",
        prefix + "00010.json",
        prefix + "notes.json",
        prefix + "00004.txt",
        prefix + "00005.json.tmp",
        prefix + "00006",
        "00012.json",  # a bare name works as well as a full key
    ]
    assert keys.done_pages(listing) == {1, 3, 10, 12}
    assert keys.done_pages([]) == set()


def test_page_key_and_done_pages_agree() -> None:
    listing = [keys.page_key(JOB_ID, n, "json") for n in (2, 99999)] + [keys.page_key(JOB_ID, 5, "png")]
    assert keys.done_pages(listing) == {2, 99999}
