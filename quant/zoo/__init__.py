"""hardyt.quant.zoo: models and data (torch side).

:mod:`.vit` (timm-layout ViT), :mod:`.load` (timm and Hugging Face
checkpoints), :mod:`.encoders` (sentence encoders: a transformer plus
pooling, sentence-transformers' layout), :mod:`.onnx_weights` (a BERT
exported to ONNX, back into ``transformers``), :mod:`.onnx_vit` (a DINOv2
saliency ViT exported to ONNX, the same way), :mod:`.preprocess` (a checkpoint's input preprocessing and
where each value came from), :mod:`.data` (Fashion-MNIST, ImageFolder,
``.npz``: in memory or streamed), :mod:`.readers` (where the images live),
:mod:`.transforms` (raw images to model input), :mod:`.train` (how the
bundled model was made), :mod:`.pretrained` (the bundled model's files).
"""
