"""Random-weight model upscaler and face restorer files in the key layouts published models use, and a
stand-in face detector file in YuNet's format, for tests that need them in a data folder (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy
import torch
from safetensors.torch import save_file

from webui.engine.upscaling.spandrel_import import load_spandrel


def random_weights(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 0.1)
    return {key: value.detach().clone().contiguous() for key, value in module.state_dict().items()}


def write_compact(path: Path, scale: int = 2, seed: int = 2) -> Path:
    """Real-ESRGAN's compact SRVGGNet layout (`body.0.weight` … as realesr-general-x4v3), tiny and fast."""
    load_spandrel()
    from spandrel.architectures.Compact import Compact

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(random_weights(Compact(num_feat=8, num_conv=1, upscale=scale), seed), path)
    return path


def write_gfpgan(path: Path, seed: int = 3) -> Path:
    """GFPGANv1.4's layout (GFPGANv1Clean, 512² faces, the `params_ema` wrapper of the published .pth), with
    random weights stored in fp16 to halve the file (the loader reads them into fp32 as it does published
    fp32 files). The architecture's size is fixed: about 86 M parameters, a 173 MB file."""
    load_spandrel()
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(seed)
    state = {key: value.half() for key, value in GFPGAN().state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": state}, path)
    return path


def write_codeformer(path: Path, seed: int = 4) -> Path:
    """CodeFormer's layout (codeformer-v0.1.0.pth: `params_ema`), from the optional spandrel_extra_arches,
    with a narrower transformer (dim 128, one layer, 64 codes; spandrel reads these from the keys)."""
    from webui.engine.upscaling.spandrel_import import load_extra_arches

    if load_extra_arches() is None:
        raise RuntimeError("spandrel_extra_arches is not installed")
    from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

    torch.manual_seed(seed)
    model = CodeFormer(dim_embd=128, n_head=8, n_layers=1, codebook_size=64, latent_size=256)
    state = {key: value.half() for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": state}, path)
    return path


def _varint(number: int) -> bytes:
    out = b""
    while True:
        low, number = number & 0x7F, number >> 7
        if not number:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _number(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_bytes(1, _number(1, size)) for size in shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, _number(1, 1) + _bytes(2, dims)))  # float tensor


def write_yunet_standin(path: Path, size: int, landmarks: numpy.ndarray) -> Path:
    """A face detector file in YuNet's format (the ONNX graph OpenCV's cv2.FaceDetectorYN runs, with its 12
    outputs cls/obj/bbox/kps at strides 8, 16 and 32) whose outputs are constants: for a picture of
    `size`² it "finds" one face, score 0.95, at `landmarks` ((5, 2): eyes, nose tip, mouth corners). The
    real YuNet file cannot be made offline; this one goes through the same OpenCV decoding. The ONNX
    protobuf is written by hand (the onnx package is not installed)."""
    landmarks = numpy.asarray(landmarks, numpy.float32)
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    box = numpy.concatenate([low - (high - low) * 0.25, (high - low) * 1.5])  # x, y, w, h around them
    centre = box[:2] + box[2:] / 2
    nodes, constants, outputs = [], [], []
    for stride in (8, 16, 32):
        cells = (size // stride) ** 2
        arrays = {kind: numpy.zeros((1, cells, width), numpy.float32) for kind, width in
                  (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10))}  # fmt: skip
        if stride == 8:  # YuNet's decoding: cell + offset, times the stride; sizes as exp(value) × stride
            column, row = (centre // stride).astype(int)
            cell = row * (size // stride) + column
            arrays["cls"][0, cell] = arrays["obj"][0, cell] = 0.95
            arrays["bbox"][0, cell] = [*(centre / stride - [column, row]), *numpy.log(box[2:] / stride)]
            arrays["kps"][0, cell] = (landmarks / stride - [column, row]).reshape(10)
        for kind, array in arrays.items():
            name = f"{kind}_{stride}"
            dims = b"".join(_number(1, length) for length in array.shape)
            constants.append(dims + _number(2, 1) + _bytes(8, f"{name}_value") + _bytes(9, array.tobytes()))
            node = _bytes(1, f"{name}_value") + _bytes(2, name) + _bytes(3, name) + _bytes(4, "Identity")
            nodes.append(node)
            outputs.append(_value_info(name, array.shape))
    graph = b"".join(_bytes(1, item) for item in nodes) + _bytes(2, "yunet-standin")
    graph += b"".join(_bytes(5, constant) for constant in constants)
    graph += _bytes(11, _value_info("input", (1, 3, size, size))) + b"".join(_bytes(12, o) for o in outputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_number(1, 8) + _bytes(8, _bytes(1, "") + _number(2, 13)) + _bytes(7, graph))
    return path
