"""The identification and following engine: spectrogram frames in, updates out.

Every hop (0.5 s = 10 frames at 20 fps) the engine embeds the newest audio,
searches the library and publishes an :class:`~companion.engine.results.EngineUpdate`:
the ranked pieces with calibrated confidence, the current (document, page,
system) and an explicit "not in the library / not sure" state.

Three methods, selectable so each can be measured on its own:

* ``"votes"`` -- (a) the baseline of Dorfer et al.: the 25 nearest snippets of
  each excerpt vote for their piece; votes accumulate since the start (or the
  last silence); the highlighted system is the most-voted one of the top piece
  in the current hop. No temporal model.
* ``"passages"`` -- (b) passage matching alone: each hop, the best-matching
  system passage (GRU embedding of the last seconds of audio) votes; the same
  accumulation as (a).
* ``"full"`` -- (c) both kinds of evidence into the online HMM over the systems
  of all pieces (:class:`~companion.engine.follower.SystemFollower`), which
  moves forward, allows repeats, jumps and a change of piece, and falls back
  to "unknown" on silence or unfamiliar music.
* ``"align"`` -- (c) as an online DTW: each hop's audio embedding is scored
  against *every* snippet and paths through each score's snippets, in reading
  order, accumulate the evidence (:class:`~companion.engine.align.SnippetAligner`:
  moves forward, allows repeats and jumps at a price, forgets old evidence so a
  change of piece is picked up); the piece confidence is a softmax over the
  documents' path scores and an "unknown" score.

Nothing here imports Qt; the engine runs on the capture worker thread or in a
command-line job.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import numpy as np

from companion.engine.align import AlignParams, SnippetAligner
from companion.engine.evidence import (
    AudioEncoder,
    HopEvidence,
    has_passage_encoder,
    library_has_passages,
    passage_evidence,
    snippet_votes,
)
from companion.engine.follower import FollowerParams, SystemFollower
from companion.engine.layout import Layout, SearchableLibrary
from companion.engine.passage_cache import PassageCache
from companion.engine.results import EngineUpdate, PieceConfidence, Position, Status
from companion.errors import CompanionError

log = logging.getLogger(__name__)

METHODS = ("votes", "passages", "full", "align")
EXCERPT_FRAMES = 42
"""Audio excerpt length of the snippet encoder (2.1 s at 20 fps)."""
N_BANDS = 92
MIN_FRAMES = 30
"""The first excerpt is embedded after 1.5 s, padded with silence in front (a 2-s query gets an answer)."""


class EngineError(CompanionError):
    """The engine cannot run with this library, model or input."""


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the follower's piece probability: ``sigmoid(a * logit(p) + b)``.

    Why: the HMM posterior is over-confident when the evidence of consecutive
    hops is correlated (it is: excerpts overlap); ``a``, ``b`` are fitted on
    rendered development pieces so that a confidence of 0.8 is right ~80% of
    the time.
    """

    a: float = 1.0
    b: float = 0.0

    def __call__(self, p: np.ndarray | float) -> np.ndarray:
        q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
        z = self.a * np.log(q / (1 - q)) + self.b
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


@dataclass(frozen=True)
class AlignDecision:
    """Method "align": path scores -> piece confidence -> identified or not (its own calibration)."""

    temperature: float = 3.0
    """Softmax temperature over path scores (their units: standardised cosines summed along a path)."""
    unknown: float = 30.0
    """The path score the "not in the library / not sure" state stands for."""
    margin: float | None = None
    """When set, "not sure" also stands for the runner-up document's path score plus this margin.

    Why: audio of a piece that is in no score still traces some path, and over a
    minute its best path score reaches the level of a right one (benchmark
    strangers: up to ~70, the demo's right piece ~65); what it rarely does is
    *lead every other document* by much. With a margin the top piece is named
    when it stands out from the rest, at whatever absolute level."""
    identify_threshold: float = 0.5
    release_threshold: float = 0.3
    switch_margin: float = 0.0
    """Once a system is shown, the display stays there (or moves on to the next system) unless a
    path ending elsewhere in the piece leads by more than this (path-score units; 0 = always the best path).

    Why: where a piece says similar things twice, the best path can flip to the
    other place for a few hops on a small bias of the similarities; on the
    benchmark's streams a flip to a distant system was ~20% of the hops after
    identification. A genuine repeat or jump builds a lead quickly and still wins."""
    calibration: Calibration = field(default_factory=Calibration)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AlignDecision":
        data = dict(data)
        cal = Calibration(**data.pop("calibration", {}))
        known = {f for f in cls.__dataclass_fields__}
        return cls(calibration=cal, **{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class EngineParams:
    """Everything that shapes the engine's decisions (see ``companion bench identify``)."""

    method: str = "full"
    hop_frames: int = 10
    """Frames between updates (10 = 0.5 s at 20 fps)."""
    excerpts_per_hop: int = 1
    """Excerpts embedded per hop, ending at the newest frame and spread over the hop."""
    k_snippets: int = 25
    passage_frames: int = 60
    """Audio the passage encoder sees (3 s at 20 fps): longer windows match better but lag more."""
    k_passages: int = 20
    w_votes: float = 0.5
    """Weight of a system's snippet vote share in its score."""
    w_doc_votes: float = 0.0
    """Weight of its document's vote share above chance."""
    w_snippet: float = 0.5
    """Weight of the best snippet cosine of the system."""
    w_passage: float = 0.5
    """Weight of the passage cosine of the system."""
    silence_level: float = 0.05
    """A hop whose loudest bin stays below this (log-spectrogram units, ~-60 dBFS) is silence."""
    identify_threshold: float = 0.5
    """Calibrated piece confidence needed to say 'identified' (full method)."""
    release_threshold: float = 0.3
    """Once identified, the same piece stays identified while its confidence is above this
    (hysteresis: the display does not flicker on one ambiguous hop)."""
    vote_threshold: float = 0.3
    """Methods (a)/(b): accumulated vote share of the top piece needed to say 'identified'."""
    min_vote_hops: int = 2
    """Methods (a)/(b): hops of evidence before any identification."""
    top_pieces: int = 5
    follower: FollowerParams = field(default_factory=lambda: FollowerParams(temperature=0.1, unknown_score=0.85))
    """Scores are in cosine units here; ``companion bench identify --fit`` refits these per model."""
    calibration: Calibration = field(default_factory=Calibration)
    align: AlignParams = field(default_factory=AlignParams)
    """Method "align": the path recursion (decay, steps per hop, jump price)."""
    align_decision: "AlignDecision" = field(default_factory=lambda: AlignDecision())
    """Method "align": how path scores become confidences and decisions (fitted per model)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise EngineError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.hop_frames < 1 or self.excerpts_per_hop < 1 or self.k_snippets < 1:
            raise EngineError("hop_frames, excerpts_per_hop and k_snippets must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineParams":
        data = dict(data)
        follower = FollowerParams(**data.pop("follower", {}))
        calibration = Calibration(**data.pop("calibration", {}))
        align = AlignParams(**data.pop("align", {}))
        decision = AlignDecision.from_dict(data.pop("align_decision", {}))
        known = {f for f in cls.__dataclass_fields__}
        return cls(follower=follower, calibration=calibration, align=align, align_decision=decision,
                   **{k: v for k, v in data.items() if k in known})


class Engine:
    """Streaming identification and following over one library.

    Feed spectrogram frames with :meth:`push` (any chunk size); every
    ``hop_frames`` frames it returns an update. :meth:`reset` starts over.
    """

    def __init__(self, library: SearchableLibrary, encoder: AudioEncoder,
                 params: EngineParams | None = None, audio_reference: np.ndarray | None = None) -> None:
        self.library = library
        self.encoder = encoder
        self.params = params or EngineParams()
        self.audio_reference = audio_reference
        """Audio excerpt embeddings of music in general (method "align": each snippet's hubness)."""
        lib_model = str(getattr(library, "model_version", "") or "")
        enc_model = str(getattr(encoder, "model_version", "") or "")
        if lib_model and enc_model and lib_model != enc_model:
            raise EngineError(
                f"the library was indexed with model {lib_model} but the installed model is {enc_model}; "
                "run 'companion index' on the library again to re-embed it"
            )
        self._history = max(EXCERPT_FRAMES + self.params.hop_frames, self.params.passage_frames)
        self._passages = PassageCache(encoder)
        self._load_layout()
        self.reset()

    # ------------------------------------------------------------------ setup
    def _load_layout(self) -> None:
        self.layout = Layout.from_library(self.library)
        self.use_passages = (self.params.method in ("passages", "full") and has_passage_encoder(self.encoder)
                             and library_has_passages(self.library))
        if self.params.method == "passages" and not self.use_passages:
            raise EngineError("passage matching needs a passage model and a library indexed with it")
        self.use_votes = self.params.method in ("votes", "full", "align")
        self.follower = SystemFollower(self.layout.doc_sizes, self.params.follower)
        self.aligner = self._build_aligner() if self.params.method == "align" else None
        # chance share of votes per document: its share of systems
        sizes = self.layout.doc_sizes.astype(np.float64)
        self._doc_prior = sizes / max(1.0, sizes.sum())

    def _build_aligner(self) -> SnippetAligner:
        table = getattr(self.library, "snippet_table", None)
        if not callable(table):
            raise EngineError("the alignment method needs a library that lists all its snippets")
        vecs, rows = table()
        flat = self.library.flat_system_index(rows[None, :, :])[0] if len(rows) else np.zeros(0, np.int64)
        return SnippetAligner(vecs, flat, rows[:, 3] if len(rows) else np.zeros(0), self.layout.doc_of,
                              len(self.layout.documents), self.params.align, self.audio_reference)

    def reset(self) -> None:
        """Forget the performance (a new recording or stream starts)."""
        self._buf = np.zeros((self._history, N_BANDS), np.float32)
        self._filled = 0
        self._frames_seen = 0
        self._passages.reset()
        self._since_hop = 0
        self._t_next = 0.0
        self.follower.reset()
        self._hold = 0
        self._acc = np.zeros(len(self.layout.documents))
        self._acc_hops = 0
        self._last_flat = -1
        self._hold = 0
        self.hops = 0
        if self.aligner is not None:
            self.aligner.reset()

    @property
    def n_systems(self) -> int:
        return self.layout.n_systems

    # ------------------------------------------------------------------ input
    def push(self, frames: np.ndarray, t: float | None = None, fps: float = 20.0) -> list[EngineUpdate]:
        """Add spectrogram frames ``(k, 92)``; ``t`` is the time of the first one.

        Returns one update per completed hop (usually zero or one).
        """
        x = np.asarray(frames, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != N_BANDS:
            raise EngineError(f"expected spectrogram frames of shape (k, {N_BANDS}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if t is None:
            t = self._t_next
        out: list[EngineUpdate] = []
        i = 0
        while i < len(x):
            take = min(len(x) - i, self.params.hop_frames - self._since_hop)
            self._append(x[i : i + take])
            i += take
            self._since_hop += take
            if self._since_hop >= self.params.hop_frames:
                self._since_hop = 0
                out.append(self.hop(t + (i - 1) / fps))
        self._t_next = t + len(x) / fps
        return out

    def _append(self, x: np.ndarray) -> None:
        n = len(x)
        if n >= self._history:
            self._buf[:] = x[-self._history :]
        else:
            self._buf[:-n] = self._buf[n:]
            self._buf[-n:] = x
        self._filled = min(self._history, self._filled + n)
        self._frames_seen += n

    def silence(self, t: float) -> EngineUpdate:
        """The pianist stopped (silence gate closed): decay to 'unknown' and restart voting."""
        self._acc[:] = 0
        self._acc_hops = 0
        self._last_flat = -1
        if self.aligner is not None:
            self.aligner.reset()
        self.follower.update(np.zeros(self.n_systems), active=False)
        return EngineUpdate(t=t, status=Status.SILENT, unknown=self.follower.unknown_probability)

    # ------------------------------------------------------------------ one hop
    def _excerpts(self) -> np.ndarray:
        p = self.params
        ends = [self._history - int(round(j * p.hop_frames / p.excerpts_per_hop)) for j in range(p.excerpts_per_hop)]
        pad = EXCERPT_FRAMES - MIN_FRAMES
        ends = [e for e in ends if e - EXCERPT_FRAMES + pad >= self._history - self._filled]
        if not ends:
            return np.zeros((0, N_BANDS, EXCERPT_FRAMES), np.float32)
        return np.stack([self._buf[e - EXCERPT_FRAMES : e].T for e in ends])

    def _check_generation(self) -> None:
        """Follow a library that was re-published meanwhile (an indexer ran): new layout, beliefs reset."""
        refresh = getattr(self.library, "refresh", None)
        if callable(refresh):
            try:
                refresh()
            except Exception as exc:  # a damaged new generation: keep searching the old snapshot
                log.warning("library refresh failed: %s", exc)
        if int(self.library.generation) != self.layout.generation:
            log.info("library changed (generation %s -> %s): reloading", self.layout.generation,
                     self.library.generation)
            self._load_layout()
            self.forget()

    def evidence(self) -> HopEvidence | None:
        """Embed the newest audio and search the library (None when too little audio)."""
        self._check_generation()
        p = self.params
        layout = self.layout
        sys_v = np.zeros(layout.n_systems)
        doc_v = np.zeros(len(layout.documents))
        sim = None
        n = 0
        emb = None
        if self.use_votes:
            ex = self._excerpts()
            if len(ex) == 0:
                return None
            emb = np.asarray(self.encoder.embed_audio_excerpts(ex), np.float32)
            sys_v, doc_v, sim, n = snippet_votes(self.library, layout, emb, p.k_snippets)
        passage = None
        top = -1
        if self.use_passages:
            have = min(self._filled, p.passage_frames)
            if have < MIN_FRAMES:
                if not self.use_votes:
                    return None
            else:
                spec = self._buf[-have:]
                emb_p = self._passages.embed(spec, self._frames_seen)
                passage, top = passage_evidence(self.library, layout, emb_p, p.k_passages)
        return HopEvidence(sys_v, doc_v, sim, passage, top, n, embeddings=emb)

    def system_scores(self, ev: HopEvidence) -> np.ndarray:
        """The follower's per-system score: a weighted sum of the kinds of evidence.

        Snippet and passage cosines are absolute levels, so the follower's
        ``unknown_score`` is a threshold in cosine units: music far from
        everything in the library stays "unknown".
        """
        p = self.params
        s = p.w_votes * ev.system_votes
        if ev.snippet_sim is not None:
            s = s + p.w_snippet * ev.snippet_sim
        if len(ev.doc_votes):
            lift = np.maximum(ev.doc_votes - self._doc_prior, 0.0)
            s = s + p.w_doc_votes * lift[self.layout.doc_of]
        if ev.passage is not None:
            s = s + p.w_passage * ev.passage
        return s

    def hop(self, t: float) -> EngineUpdate:
        """Observe the newest audio and decide (one update)."""
        return self.decide(t, self.observe())

    def observe(self) -> HopEvidence | Status:
        """The evidence of the current hop, or LISTENING / SILENT when there is none.

        Split from :meth:`decide` so a benchmark can embed and search once and
        replay the same evidence through several decision rules.
        """
        self.hops += 1
        if self._filled < MIN_FRAMES:
            return Status.LISTENING
        recent = self._buf[-self.params.hop_frames :]
        if float(recent.max()) < self.params.silence_level:
            return Status.SILENT
        if self.n_systems == 0:
            return Status.UNSURE
        ev = self.evidence()
        return Status.LISTENING if ev is None else ev

    def decide(self, t: float, obs: HopEvidence | Status) -> EngineUpdate:
        """Update the beliefs with one hop's evidence and say what they mean."""
        if obs is Status.SILENT:
            return self.silence(t)
        if isinstance(obs, Status):
            return EngineUpdate(t=t, status=obs, unknown=self.follower.unknown_probability)
        if self.params.method == "full":
            return self._hop_full(t, obs)
        if self.params.method == "align":
            return self._hop_align(t, obs)
        return self._hop_votes(t, obs)

    def jump_to(self, doc_index: int, system: int) -> None:
        """The user says the performance is at this system (reading order): follow from there."""
        self.follower.jump_to(doc_index, system)
        self._last_flat = self.layout.flat(doc_index, system)
        if self.aligner is not None:
            dec = self.params.align_decision
            self.aligner.focus(self._last_flat,
                               bonus=abs(dec.unknown) + abs(dec.margin or 0.0) + 10 * dec.temperature)
        # the audio window still holds what was played before the click: trust the user until
        # the window has moved past it (then the evidence decides again)
        window = max(EXCERPT_FRAMES, self.params.passage_frames if self.use_passages else 0)
        self._hold = int(math.ceil(window / self.params.hop_frames))

    def forget(self) -> None:
        """Reset the beliefs but keep the audio buffer (replaying evidence)."""
        self.follower.reset()
        if self.aligner is not None:
            self.aligner.reset()
        self._hold = 0
        self._acc = np.zeros(len(self.layout.documents))
        self._acc_hops = 0
        self._last_flat = -1

    def _position(self, flat: int, confidence: float) -> Position:
        d, page, on_page = self.layout.locate(flat)
        doc = self.layout.documents[d]
        index = flat - int(self.layout.doc_start[d])
        return Position(doc.id, doc.path, doc.title, page, on_page, index, float(confidence))

    def _pieces(self, conf: np.ndarray) -> tuple[PieceConfidence, ...]:
        order = np.argsort(-conf, kind="stable")[: self.params.top_pieces]
        docs = self.layout.documents
        return tuple(PieceConfidence(docs[i].id, docs[i].path, docs[i].title, float(conf[i]))
                     for i in order if conf[i] > 0)

    def _hop_full(self, t: float, ev: HopEvidence) -> EngineUpdate:
        f = self.follower
        scores = self.system_scores(ev)
        if self._hold > 0:  # after a user jump: move on with the transition model only
            self._hold -= 1
            scores = np.full_like(scores, max(float(scores.max(initial=0.0)), f.params.unknown_score + 0.1))
        f.update(scores, active=True)
        raw = f.document_probabilities()
        conf = self.params.calibration(raw) * (raw > 0)
        unknown = f.unknown_probability
        best = int(np.argmax(raw)) if len(raw) else -1
        threshold = self.params.identify_threshold
        if best >= 0 and self._last_flat >= 0 and self.layout.doc_of[self._last_flat] == best:
            threshold = min(threshold, self.params.release_threshold)
        if best < 0 or conf[best] < threshold:
            self._last_flat = -1
            return EngineUpdate(t, Status.UNSURE, self._pieces(conf), None, float(max(unknown, 1 - conf.max(initial=0))))
        lo = int(self.layout.doc_start[best])
        hi = lo + int(self.layout.doc_sizes[best])
        post = f.posterior[lo:hi]
        flat = lo + int(np.argmax(post))
        self._last_flat = flat
        pos = self._position(flat, float(post.max() / max(post.sum(), 1e-12)))
        return EngineUpdate(t, Status.IDENTIFIED, self._pieces(conf), pos, float(1 - conf[best]))

    def unknown_score(self, scores: np.ndarray) -> float:
        """Method "align": the path score "not in the library / not sure" stands for at this hop."""
        dec = self.params.align_decision
        finite = scores[np.isfinite(scores)]
        if dec.margin is None or len(finite) < 2:
            return float(dec.unknown)
        return max(float(dec.unknown), float(np.partition(finite, -2)[-2]) + float(dec.margin))

    def align_probabilities(self) -> np.ndarray:
        """Method "align": softmax over the documents' path scores and the unknown score (documents only)."""
        a = self.aligner
        scores = a.document_scores() if a is not None else np.full(len(self.layout.documents), -np.inf)
        dec = self.params.align_decision
        z = np.r_[scores, self.unknown_score(scores)] / dec.temperature
        z = np.exp(z - np.max(z))
        return (z / z.sum())[:-1]

    def _hop_align(self, t: float, ev: HopEvidence) -> EngineUpdate:
        a = self.aligner
        assert a is not None
        if ev.embeddings is not None and len(ev.embeddings):
            if self._hold > 0:  # after a user jump: the window still holds the audio from before the click
                self._hold -= 1
            else:
                a.update(ev.embeddings)
        dec = self.params.align_decision
        raw = self.align_probabilities()
        conf = dec.calibration(raw) * (raw > 0)
        unknown = float(1.0 - raw.sum())
        best = int(np.argmax(raw)) if len(raw) else -1
        threshold = dec.identify_threshold
        if best >= 0 and self._last_flat >= 0 and self.layout.doc_of[self._last_flat] == best:
            threshold = min(threshold, dec.release_threshold)
        if best < 0 or conf[best] < threshold:
            self._last_flat = -1
            return EngineUpdate(t, Status.UNSURE, self._pieces(conf), None, float(max(unknown, 1 - conf.max(initial=0))))
        flat = self._shown_system(best)
        if flat < 0:
            flat = int(self.layout.doc_start[best])
        self._last_flat = flat
        return EngineUpdate(t, Status.IDENTIFIED, self._pieces(conf), self._position(flat, float(conf[best])),
                            float(1 - conf[best]))

    def _shown_system(self, doc: int) -> int:
        """Method "align": the system to show for ``doc`` -- where its best path ends, with hysteresis
        (:attr:`AlignDecision.switch_margin`) around the system shown at the previous hop."""
        a = self.aligner
        assert a is not None
        margin = self.params.align_decision.switch_margin
        prev = self._last_flat
        if margin <= 0 or prev < 0 or int(self.layout.doc_of[prev]) != doc:
            return a.best_system(doc)
        systems, scores = a.system_scores(doc)
        if len(systems) == 0 or not np.isfinite(scores).any():
            return a.best_system(doc)
        top = int(np.argmax(scores))
        held = (systems == prev) | (systems == prev + 1)  # stay, or read on
        if held[top] or not held.any() or scores[top] - scores[held].max() > margin:
            return int(systems[top])
        return int(systems[held][int(np.argmax(scores[held]))])

    def _hop_votes(self, t: float, ev: HopEvidence) -> EngineUpdate:
        """Methods (a) and (b): accumulate per-piece votes, no temporal model."""
        if self.params.method == "votes":
            self._acc += ev.doc_votes
            hop_sys = ev.system_votes
        else:
            hop_sys = ev.passage if ev.passage is not None else np.zeros(self.n_systems)
            if ev.top_passage >= 0:
                self._acc[self.layout.doc_of[ev.top_passage]] += 1.0
        self._acc_hops += 1
        total = float(self._acc.sum())
        share = self._acc / total if total > 0 else np.zeros_like(self._acc)
        best = int(np.argmax(share)) if len(share) else -1
        if best < 0 or total == 0 or self._acc_hops < self.params.min_vote_hops \
                or share[best] < self.params.vote_threshold:
            return EngineUpdate(t, Status.UNSURE, self._pieces(share), None, float(1 - share.max(initial=0)))
        lo = int(self.layout.doc_start[best])
        hi = lo + int(self.layout.doc_sizes[best])
        local = hop_sys[lo:hi]
        if local.max(initial=0) > 0:
            flat = lo + int(np.argmax(local))
        elif lo <= self._last_flat < hi:
            flat = self._last_flat
        else:
            flat = lo
        self._last_flat = flat
        if self.params.method == "votes":
            sys_conf = float(local.max() / max(local.sum(), 1e-12)) if local.sum() > 0 else 0.0
        else:
            sys_conf = float(np.clip(local.max(initial=0.0), 0.0, 1.0))
        return EngineUpdate(t, Status.IDENTIFIED, self._pieces(share), self._position(flat, sys_conf),
                            float(1 - share[best]))

    # ------------------------------------------------------------------ offline
    def run(self, spectrogram: np.ndarray, t0: float = 0.0, fps: float = 20.0,
            chunk: int = 10) -> list[EngineUpdate]:
        """Feed a whole spectrogram as a stream (same path as live) and return every update."""
        self.reset()
        out: list[EngineUpdate] = []
        spec = np.asarray(spectrogram, np.float32)
        for i in range(0, len(spec), chunk):
            out.extend(self.push(spec[i : i + chunk], t0 + i / fps, fps))
        return out

    def observe_all(self, spectrogram: np.ndarray, t0: float = 0.0, fps: float = 20.0
                    ) -> list[tuple[float, HopEvidence | Status]]:
        """Evidence of every hop of a whole spectrogram (for :meth:`replay`)."""
        self.reset()
        spec = np.asarray(spectrogram, np.float32)
        hop = self.params.hop_frames
        out = []
        for i in range(0, len(spec) - hop + 1, hop):
            self._append(spec[i : i + hop])
            out.append((t0 + (i + hop - 1) / fps, self.observe()))
        return out

    def replay(self, observations: list[tuple[float, HopEvidence | Status]]) -> list[EngineUpdate]:
        """Decide on recorded evidence (same updates as :meth:`run` with these parameters)."""
        self.forget()
        return [self.decide(t, obs) for t, obs in observations]

    def with_params(self, **changes: Any) -> "Engine":
        """A new engine on the same library and encoder with some parameters changed."""
        return Engine(self.library, self.encoder, replace(self.params, **changes), self.audio_reference)


def summarise(updates: Iterable[EngineUpdate], layout: Layout) -> list[tuple[int, float]]:
    """Mean calibrated confidence per document over all updates, best first (doc index, score).

    Why the mean over time: a recording may hold more than one piece; each gets
    credit for the share of the recording it was recognised in.
    """
    totals = np.zeros(len(layout.documents))
    n = 0
    index = {doc.id: i for i, doc in enumerate(layout.documents)}
    for u in updates:
        n += 1
        for pc in u.pieces:
            totals[index[pc.document_id]] += pc.confidence
    if n == 0:
        return []
    scores = totals / n
    order = np.argsort(-scores, kind="stable")
    return [(int(i), float(scores[i])) for i in order if scores[i] > 0 and not math.isnan(scores[i])]
