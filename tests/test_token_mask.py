"""Padding tokens never shape a conversion: fits, clips and checks read only the tokens the attention mask keeps."""
import torch

from hardyt.quant.conversion.fixed_dyt import FixedDyT
from hardyt.quant.conversion.pipeline import convert
from hardyt.quant.runtime.graph import capture, layer_norm_names
from hardyt.quant.zoo.encoders import SentenceEncoder

from test_encoders import tiny_bert


def _encoder(pad_scale=1.0):
    bert = tiny_bert()
    with torch.no_grad():   # the pad token (id 0): activations unlike any real token's when scaled up
        bert.embeddings.word_embeddings.weight[0].mul_(pad_scale)
    return SentenceEncoder(bert, "mean").eval()


def _batches(pad: int, n_batches=12, n=8, length=8, seed=0):
    """Sentences of ``length`` real tokens, followed by ``pad`` padding tokens each."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(1, 64, (n, length), generator=g)
        mask = torch.ones_like(ids)
        out.append({"input_ids": torch.cat([ids, torch.zeros(n, pad, dtype=ids.dtype)], 1),
                    "attention_mask": torch.cat([mask, torch.zeros(n, pad, dtype=mask.dtype)], 1)})
    return out


def test_capture_keeps_only_the_tokens_that_count():
    enc = _encoder()
    padded, plain = _batches(pad=6, n_batches=2), _batches(pad=0, n_batches=2)
    names = layer_norm_names(enc, plain[0])
    got, want = capture(enc, names, padded, outputs=True), capture(enc, names, plain, outputs=True)
    for n in names:
        assert got[n][0].shape == want[n][0].shape == (2 * 8 * 8, 32)
        torch.testing.assert_close(got[n][0], want[n][0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got[n][1], want[n][1], atol=1e-4, rtol=1e-4)


def test_padding_does_not_move_alpha_or_the_input_scale():
    enc = _encoder(pad_scale=50.0)
    specs = {}
    for pad in (0, 6):
        fixed, _ = convert(enc, _batches(pad=pad), fixed_point={"in_bits": 8}, steps=0, seed=0)
        specs[pad] = {m.spec.name: m.spec for m in fixed.modules() if isinstance(m, FixedDyT)}
    assert len(specs[0]) == 5
    for name, spec in specs[0].items():
        other = specs[6][name]
        assert abs(other.in_scale / spec.in_scale - 1) < 1e-3, (name, spec.in_scale, other.in_scale)
        assert abs(other.alpha / spec.alpha - 1) < 1e-3, (name, spec.alpha, other.alpha)


class _TokenStates(torch.nn.Module):
    """A BERT's token states ``(B, T, C)``, with the states of the tokens ``garble`` marks replaced by noise."""

    def __init__(self, bert, garble=None):
        super().__init__()
        self.bert, self.garble = bert, garble

    def forward(self, input_ids, attention_mask):
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.garble is None:
            return h
        noise = 10 * torch.randn(h.shape, generator=torch.Generator().manual_seed(0))
        return torch.where(self.garble(attention_mask)[..., None], noise, h)


def test_referee_compares_a_token_output_on_the_tokens_that_count():
    from hardyt.quant.conversion.referee import Referee
    bert, batches = tiny_bert(), _batches(pad=6, n_batches=2)
    referee = Referee(_TokenStates(bert), batches, classifier=False)
    # Different padding states: the same model to the referee.
    assert referee.measure(_TokenStates(bert, lambda m: m == 0))["cosine"] > 1 - 1e-6
    # A different first token: not the same.
    assert referee.measure(_TokenStates(bert, lambda m: torch.arange(m.shape[1]) == 0))["cosine"] < 0.99
