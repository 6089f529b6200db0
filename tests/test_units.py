import pytest

from vramscope.errors import VramscopeError
from vramscope.units import format_count, parse_bytes, parse_count, parse_int


@pytest.mark.parametrize("text, expected", [
    ("7B", 7_000_000_000), ("6.7e9", 6_700_000_000), ("70b", 70_000_000_000), ("1.5T", 1_500_000_000_000),
    ("350M", 350_000_000), ("125k", 125_000), ("8030261248", 8_030_261_248), (7e9, 7_000_000_000),
    (" 13B ", 13_000_000_000),
])
def test_parse_count(text, expected):
    assert parse_count(text) == expected


@pytest.mark.parametrize("text, key", [
    ("-7B", "bad_count"), ("0", "count_not_positive"), ("abc", "bad_count"), ("1e30", "count_too_large"),
    ("nan", "bad_count"), ("", "bad_count"), ("7X", "bad_count"), (0, "count_not_positive"),
    (float("inf"), "count_not_positive"), (True, "bad_count"),
])
def test_parse_count_rejects(text, key):
    with pytest.raises(VramscopeError) as e:
        parse_count(text)
    assert e.value.key == key
    assert "--params" in str(e.value)


@pytest.mark.parametrize("text, expected", [
    ("24GB", 24 * 10**9), ("80GiB", 80 * 2**30), ("24G", 24 * 2**30), ("1024", 1024), ("512MiB", 512 * 2**20),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["-1GB", "lots", "1e30GB", "0GB"])
def test_parse_bytes_rejects(text):
    with pytest.raises(VramscopeError):
        parse_bytes(text)


def test_parse_int_bounds():
    assert parse_int("4", "--batch") == 4
    assert parse_int("1e3", "--seq") == 1000
    for bad in ("0", "-3", "2.5", "x", "1e30"):
        with pytest.raises(VramscopeError) as e:
            parse_int(bad, "--batch", 1, 1000)
        assert "--batch" in str(e.value)


def test_format_count():
    assert format_count(8_030_261_248) == "8.03B"
    assert format_count(124_439_808) == "124.44M"


@pytest.mark.parametrize("text", ["24GB", "24G", "24GiB", "24gb", "24 GB"])
def test_gpu_size_is_binary(text):
    """A "24 GB" card has 24 GiB (the RTX 4090's 24,564 MiB): GPU sizes are binary in every spelling."""
    from vramscope.gpus import find_gpu, size_note

    assert find_gpu(text).memory_bytes == 24 * 2**30
    note = size_note(text)
    assert (note is None) == text.lower().endswith("ib")
    assert parse_bytes("24GB") == 24 * 10**9  # a plain size outside a GPU stays decimal
