import gzip

import numpy as np
import pytest
from data_helpers import idx_bytes, write_idx

from cnnlab.data.idx import read_idx
from cnnlab.data.sources import check_pair


@pytest.mark.parametrize("compress", [True, False])
def test_reads_good_files(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x-idx3-ubyte", images, compress)
    result = read_idx(path)
    assert result.shape == (2, 3, 4) and result.dtype == np.uint8
    np.testing.assert_array_equal(result, images)


def test_reads_big_endian_integers(tmp_path):
    values = np.array([1, -2, 70000], dtype=">i4")
    data = bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + values.tobytes()
    (tmp_path / "ints").write_bytes(data)
    assert read_idx(tmp_path / "ints").tolist() == [1, -2, 70000]


def test_wrong_magic_names_file_and_bytes(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x01\x02\x08\x01" + bytes(8)))
    with pytest.raises(ValueError, match=r"bad\.gz: not an IDX file.*found 01 02 08 01"):
        read_idx(path)


def test_truncated_data_reports_expected_and_found(tmp_path):
    data = idx_bytes(np.zeros((10, 4, 4), np.uint8))[:-5]
    path = tmp_path / "cut"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"cut: .*10x4x4 uint8 values \(176 bytes\), "
                                         r"found 171 bytes \(truncated\)"):
        read_idx(path)


def test_count_mismatch_between_header_and_data(tmp_path):
    data = idx_bytes(np.zeros((3, 2, 2), np.uint8)) + bytes(4)  # one image more than declared
    path = tmp_path / "extra.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match="trailing data"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="header of 16 bytes"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz: corrupted or truncated gzip"):
        read_idx(path)


def test_images_and_labels_must_agree():
    with pytest.raises(ValueError, match="5 images and 4 labels"):
        check_pair(np.zeros((5, 2, 2), np.uint8), np.zeros(4, np.uint8), "pair")
    with pytest.raises(ValueError, match=r"shape \(N, H, W\)"):
        check_pair(np.zeros((5, 4), np.uint8), np.zeros(5, np.uint8), "pair")
