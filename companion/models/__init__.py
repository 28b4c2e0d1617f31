"""Cross-modal encoders (sheet snippets, audio excerpts, passages), checkpoints and run-time embedding.

    from companion.models import Embedder
    emb = Embedder(cfg.models_dir, threads=1)          # models/snippet.pt (+ passage.pt)
    z_sheet = emb.embed_sheet_snippets(snippets)      # (N, 80, 100) uint8 -> (N, 32)
    z_audio = emb.embed_audio_excerpts(excerpts)      # (N, 92, 42) -> (N, 32)
    emb.model_version                                 # hash of the weights, stored by the library
"""

from companion.models.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from companion.models.embedder import Embedder, ModelNotFoundError
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, EncoderConfig, SnippetModel, SnippetModelConfig
from companion.models.passage import PASSAGE_AUDIO_SHAPE, PassageModel, PassageModelConfig

__all__ = [
    "AUDIO_SHAPE",
    "PASSAGE_AUDIO_SHAPE",
    "SHEET_SHAPE",
    "CheckpointError",
    "Embedder",
    "EncoderConfig",
    "ModelNotFoundError",
    "PassageModel",
    "PassageModelConfig",
    "SnippetModel",
    "SnippetModelConfig",
    "load_model",
    "read_checkpoint",
    "save_checkpoint",
]
