"""The train stage's parts: its Config and presets (config), batches (data), optimizers and
schedules (optimizers), mixed precision (precision), resumable checkpoints (checkpoint), the
training loop (loop) and the loss curve (loss_curve). The stage itself is model_creation/train.py."""
