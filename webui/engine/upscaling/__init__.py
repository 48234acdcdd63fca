"""Model upscalers (ESRGAN, Real-ESRGAN, SwinIR, DAT, HAT, SCUNet, …) through spandrel.

- spandrel_import: imports spandrel without torchvision (a stand-in for the three names it needs).
- loading: weight files → spandrel models, tensors only (safetensors or weights-only unpickling).
- tiling: tiled inference with blended overlaps, progress per tile, interrupt between tiles.
- runner: PIL image → any scale (native passes, then Lanczos to the exact size), fp16 on CUDA if supported.
- catalog: A1111's folders → the listed upscalers; keeps the last model loaded.
- faces: GFPGAN / CodeFormer face restoration (face_detection: OpenCV's YuNet; face_align: FFHQ alignment
  and paste-back).
"""
