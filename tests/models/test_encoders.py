import numpy as np
import pytest
import torch

from companion.models.encoders import (
    AUDIO_SHAPE,
    SHEET_SHAPE,
    ConvEncoder,
    EncoderConfig,
    SnippetModel,
    SnippetModelConfig,
    count_parameters,
    feature_map_shape,
)
from companion.models.losses import cosine_hinge_loss, cross_modal_info_nce, hardest_negative_hinge_loss, nt_xent_loss
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


def test_hardest_negative_hinge_counts_only_the_most_similar_wrong_item():
    eye = torch.eye(4, 8)
    assert hardest_negative_hinge_loss(eye, eye, 0.7).item() == pytest.approx(0.0)
    # one confusable negative: b_1 lies between a_0's match and a_1's; the rest are orthogonal
    a = torch.eye(4, 8)
    b = torch.eye(4, 8).clone()
    b[1] = torch.nn.functional.normalize(torch.tensor([0.6, 0.8, 0, 0, 0, 0, 0, 0]), dim=0)
    sim = a @ b.t()
    # a_0: hardest wrong is b_1 (0.6), margin 0.7 -> 0.7 - 1 + 0.6 = 0.3; a_1: its match is 0.8 and
    # every wrong b is 0 -> 0; a_2, a_3: 0. Columns: b_1's match a_1 at 0.8, hardest wrong a_0 at 0.6
    # -> 0.7 - 0.8 + 0.6 = 0.5; the other columns 0.
    expect = 0.5 * ((0.3 + 0 + 0 + 0) / 4 + (0 + 0.5 + 0 + 0) / 4)
    assert sim[0, 1].item() == pytest.approx(0.6)
    assert hardest_negative_hinge_loss(a, b, 0.7).item() == pytest.approx(expect, abs=1e-6)
    # the mean hinge spreads the same violations over all twelve negatives of each direction
    assert cosine_hinge_loss(a, b, 0.7).item() == pytest.approx(0.5 * (0.3 / 12 + 0.5 / 12), abs=1e-6)
    with pytest.raises(ValueError):
        hardest_negative_hinge_loss(eye[:1], eye[:1])


def test_nt_xent_prefers_matching_views():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 32, generator=g)
    good = nt_xent_loss(z, z + 0.01 * torch.randn(16, 32, generator=g))
    bad = nt_xent_loss(z, torch.randn(16, 32, generator=g))
    assert good < bad


@pytest.mark.parametrize("pool", ["avg", "height", "flatten"])
@pytest.mark.parametrize("shape,stride", [(SHEET_SHAPE, 2), (AUDIO_SHAPE, 1), ((92, 20), 1)])
def test_pooling_sizes_match_the_feature_map(pool, shape, stride):
    cfg = EncoderConfig(shape, 4, 4, 1, stem_stride=stride, pool=pool)
    enc = ConvEncoder(cfg).eval()
    feats = enc.trunk(torch.rand(2, 1, *shape))
    rows, cols = feature_map_shape(cfg)
    assert enc.features(torch.rand(1, 1, *shape)).shape[2:] == (rows, cols)
    expected = {"avg": 16, "height": 16 * rows, "flatten": 16 * rows * cols}[pool]
    assert feats.shape == (2, expected) == (2, enc.out_channels)


def test_height_pooling_knows_where_the_ink_is_and_avg_does_not():
    """The reason for pool="height": a pattern moved up the staff (another pitch) must change the
    features, while global average pooling cannot tell the two apart."""
    torch.manual_seed(0)
    shape = (200, 100)  # tall enough that neither pattern's receptive field (73 px) meets the border
    low, high = torch.zeros(1, 1, *shape), torch.zeros(1, 1, *shape)
    low[..., 114:118, 40:44] = 1.0
    high[..., 50:54, 40:44] = 1.0  # 64 px higher: the same phase for every pooling stage
    diffs = {}
    for pool in ("avg", "height"):
        enc = ConvEncoder(EncoderConfig(shape, 4, 4, 1, stem_stride=2, batch_norm=False, pool=pool)).eval()
        diffs[pool] = (enc.trunk(low) - enc.trunk(high)).abs().max().item()
    assert diffs["avg"] < 1e-5 < diffs["height"]


def test_unknown_pool_is_refused_and_config_round_trips():
    with pytest.raises(ValueError, match="pool"):
        ConvEncoder(EncoderConfig(SHEET_SHAPE, 4, 4, 1, pool="max"))
    cfg = EncoderConfig(AUDIO_SHAPE, 4, 4, 1, pool="flatten")
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    assert EncoderConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "pool"}).pool == "avg"


def test_info_nce_prefers_matching_pairs_in_both_directions():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(16, 32, generator=g), dim=1)
    near = torch.nn.functional.normalize(a + 0.05 * torch.randn(16, 32, generator=g), dim=1)
    far = torch.nn.functional.normalize(torch.randn(16, 32, generator=g), dim=1)
    assert cross_modal_info_nce(a, near, 0.1) < cross_modal_info_nce(a, far, 0.1)
    assert cross_modal_info_nce(a, near, 0.1) == pytest.approx(cross_modal_info_nce(near, a, 0.1).item(), rel=1e-5)
    with pytest.raises(ValueError):
        cross_modal_info_nce(a[:1], a[:1])
