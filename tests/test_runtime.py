import pytest

from skeleton.core.errors import SkeletonError
from skeleton.deploy.manifest import resolve_onnx_dir
from skeleton.deploy.runtimes import onnx_providers


def test_providers_follow_the_device():
    import onnxruntime as ort

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert onnx_providers("auto")[0] == "CUDAExecutionProvider"
    else:
        assert onnx_providers("auto") == ["CPUExecutionProvider"]
        with pytest.raises(SkeletonError, match="no CUDAExecutionProvider"):
            onnx_providers("cuda")
    with pytest.raises(SkeletonError, match="unknown device"):
        onnx_providers("tpu")


def test_directories_without_an_export_are_named(tmp_path):
    with pytest.raises(SkeletonError, match="directory not found"):
        resolve_onnx_dir(tmp_path / "missing")
    with pytest.raises(SkeletonError, match=r"holds no exported model \(onnx/manifest.json\); run 'skeleton export"):
        resolve_onnx_dir(tmp_path)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "manifest.json").write_text("{}")
    assert resolve_onnx_dir(tmp_path) == tmp_path / "onnx"
    assert resolve_onnx_dir(tmp_path / "onnx") == tmp_path / "onnx"
