"""The reference MoE trainer behind `curate train` (needs the `trainer` extra: PyTorch).

config.py  what a train config may say (no torch needed, so mistakes surface first)
model.py   the DeepSeekMoE-style decoder
data.py    packed windows from the shards, the curriculum, the prefetch thread
train.py   the training loop, checkpoints and logs
"""
