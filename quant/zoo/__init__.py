"""hardyt.quant.zoo: models and data (torch side).

:mod:`.vit` (timm-layout ViT), :mod:`.load` (timm and Hugging Face
checkpoints), :mod:`.data` (Fashion-MNIST, ImageFolder, ``.npz``),
:mod:`.train` (how the bundled model was made), :mod:`.pretrained` (the
bundled model's files).
"""
