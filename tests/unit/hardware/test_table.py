from pathlib import Path

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_TABLE, hardware_for_cuda_name, load_hardware


def test_exact_cuda_names_map_to_rows() -> None:
    assert hardware_for_cuda_name("NVIDIA H100 80GB HBM3").id == "h100-sxm"  # type: ignore[union-attr]
    assert hardware_for_cuda_name("NVIDIA H100 PCIe").id == "h100-pcie"  # type: ignore[union-attr]
    assert hardware_for_cuda_name("NVIDIA GeForce RTX 5090").id == "rtx5090"  # type: ignore[union-attr]
    # Loose substrings must not match: the PCIe and SXM parts have different peaks.
    assert hardware_for_cuda_name("H100") is None
    assert hardware_for_cuda_name("NVIDIA H100") is None


def test_dense_peaks_from_the_reference() -> None:
    # Dense, FP32-accumulate figures (reference hardware.md), not the sparse or FP16-accumulate ones.
    assert HARDWARE_TABLE["h100-sxm"].peak_tflops("bf16") == 989.4
    assert HARDWARE_TABLE["rtx5090"].peak_tflops("bf16") == 209.5
    assert HARDWARE_TABLE["rtx4090"].peak_tflops("fp16") == 165.2
    assert HARDWARE_TABLE["h100-sxm"].peak_tflops("fp8") == 1978.9
    assert HARDWARE_TABLE["h100-sxm"].peak_tflops("fp32") == 494.7
    assert all(hw.source for hw in HARDWARE_TABLE.values())


def test_fp8_on_a100_is_a_user_error() -> None:
    with pytest.raises(UserError, match="FP8"):
        HARDWARE_TABLE["a100-sxm"].peak_tflops("fp8")


def test_unknown_hardware_lists_ids() -> None:
    with pytest.raises(UserError) as err:
        load_hardware("tpu-v9")
    assert "h100-sxm" in str(err.value) and "rtx5090" in str(err.value)


def test_yaml_hardware(tmp_path: Path) -> None:
    path = tmp_path / "mygpu.yaml"
    path.write_text("name: My GPU\nbf16_tflops: 100\nbandwidth_tbs: 1.0\nmemory_gb: 16\n")
    hw = load_hardware(str(path))
    assert (hw.id, hw.bf16_tflops, hw.memory_gb) == ("mygpu", 100, 16)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("bf16_tflops: [\n", "not valid YAML"),
        ("bf16_tflops: 100\n", "needs"),
        ("bf16_tflops: -1\nbandwidth_tbs: 1\nmemory_gb: 1\n", "invalid hardware"),
        ("bf16_tflops: 1\nbandwidth_tbs: 1\nmemory_gb: 1\nwarp_drive: 9\n", "unknown hardware field"),
    ],
)
def test_bad_hardware_yaml(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_hardware(str(path))
    assert needle in str(err.value) and "bad.yaml" in str(err.value)
