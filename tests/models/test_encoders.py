import numpy as np
import pytest
import torch

from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, EncoderConfig, SnippetModel, SnippetModelConfig, count_parameters
from companion.models.losses import cosine_hinge_loss, nt_xent_loss
from companion.models.passage import PassageModel, PassageModelConfig, cut_windows


def tiny_cfg(width: int = 4) -> SnippetModelConfig:
    return SnippetModelConfig(EncoderConfig(SHEET_SHAPE, width, 4, 1), EncoderConfig(AUDIO_SHAPE, width, 4, 1))


def test_snippet_shapes_and_unit_norm():
    m = SnippetModel(tiny_cfg()).eval()
    sheet = torch.randint(0, 256, (5, *SHEET_SHAPE), dtype=torch.uint8)
    audio = torch.rand(5, *AUDIO_SHAPE)
    zs, za = m(sheet, audio)
    assert zs.shape == (5, 32) and za.shape == (5, 32)
    assert torch.allclose(zs.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(za.norm(dim=1), torch.ones(5), atol=1e-5)


def test_papers_width_has_papers_parameter_count_and_width_shrinks_it():
    papers = SnippetModel(SnippetModelConfig(EncoderConfig(SHEET_SHAPE, 24, 4, 2, embed_bn=False),
                                             EncoderConfig(AUDIO_SHAPE, 24, 4, 2, embed_bn=False)))
    assert 600_000 < count_parameters(papers) < 700_000  # ~662k as in Dorfer et al.
    assert count_parameters(SnippetModel(tiny_cfg(8))) < count_parameters(papers) / 10


def test_sheet_uint8_and_float_inputs_agree():
    m = SnippetModel(tiny_cfg()).eval()
    x = torch.randint(0, 256, (3, *SHEET_SHAPE), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(m.embed_sheet(x), m.embed_sheet(x.float() / 255.0), atol=1e-5)


def test_config_round_trip():
    cfg = tiny_cfg(6)
    assert SnippetModelConfig.from_dict(cfg.to_dict()) == cfg
    pcfg = PassageModelConfig(hidden=16)
    assert PassageModelConfig.from_dict(pcfg.to_dict()) == pcfg


def test_passage_model_handles_variable_lengths():
    cfg = PassageModelConfig(sheet=EncoderConfig(SHEET_SHAPE, 4, 4, 1), audio=EncoderConfig((92, 20), 4, 4, 1), hidden=8)
    m = PassageModel(cfg).eval()
    s = torch.rand(3, 5, *SHEET_SHAPE)
    a = torch.rand(3, 7, 92, 20)
    lengths = torch.tensor([5, 2, 3])
    with torch.no_grad():
        z = m.embed_sheet(s, lengths)
        assert z.shape == (3, 64)
        assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
        # Padding beyond the length does not change the embedding.
        s2 = s.clone()
        s2[1, 2:] = torch.rand(3, *SHEET_SHAPE)
        assert torch.allclose(m.embed_sheet(s2, lengths)[1], z[1], atol=1e-5)
        assert m.embed_audio(a, torch.tensor([7, 7, 1])).shape == (3, 64)


def test_passage_init_from_snippet_copies_and_freezes():
    snip = SnippetModel(tiny_cfg())
    cfg = PassageModelConfig(sheet=EncoderConfig(SHEET_SHAPE, 4, 4, 1), audio=EncoderConfig((92, 20), 4, 4, 1), hidden=8)
    m = PassageModel(cfg)
    m.init_from_snippet_model(snip, freeze=True)
    w_src = snip.sheet.features[0].weight
    assert torch.equal(m.sheet.cnn.features[0].weight, w_src)
    assert not m.sheet.cnn.features[0].weight.requires_grad
    assert m.sheet.gru.weight_ih_l0.requires_grad


def test_cut_windows_pads_and_hops():
    w = cut_windows(torch.ones(92, 45), 20, 20)
    assert w.shape == (2, 92, 20)
    short = cut_windows(torch.ones(92, 5), 20, 20)
    assert short.shape == (1, 92, 20) and short[0, :, 5:].abs().sum() == 0


def test_hinge_loss_zero_for_separated_pairs_and_margin_when_collapsed():
    eye = torch.eye(4, 8)
    assert cosine_hinge_loss(eye, eye, 0.7).item() == pytest.approx(0.0)
    same = torch.nn.functional.normalize(torch.ones(4, 8), dim=1)
    assert cosine_hinge_loss(same, same, 0.7).item() == pytest.approx(0.7, abs=1e-5)
    with pytest.raises(ValueError):
        cosine_hinge_loss(eye[:1], eye[:1])


def test_nt_xent_prefers_matching_views():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 32, generator=g)
    good = nt_xent_loss(z, z + 0.01 * torch.randn(16, 32, generator=g))
    bad = nt_xent_loss(z, torch.randn(16, 32, generator=g))
    assert good < bad
