"""Comment text in English and Spanish from templates, built without a loop per comment.

A comment is ``opener + phrase + slang + emoji``; the phrase carries the polarity, including
negations ("not good", "not bad at all", "no me gustó", "no está mal") so that a sentiment model
has to handle them. No phrase contains a double quote or a backslash.
"""

from __future__ import annotations

import numpy as np

NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2
ENGLISH, SPANISH = 0, 1

PHRASES = {
    (ENGLISH, POSITIVE): (
        "love this", "this is amazing", "so good", "best video ever", "obsessed with this",
        "you nailed it", "not bad at all", "this made my day", "can't stop watching",
        "absolutely love it", "great tips, thanks", "this is fire", "so helpful",
        "you never miss", "literally perfect", "I love your content",
    ),
    (ENGLISH, NEGATIVE): (
        "not good", "this is boring", "worst video ever", "I hate this", "not worth it",
        "didn't like this at all", "so fake", "this is trash", "unfollowing",
        "waste of time", "not funny", "getting worse every day", "I'm done with this app",
        "this is terrible", "no one asked for this", "honestly disappointing",
    ),
    (ENGLISH, NEUTRAL): (
        "where is this from?", "what song is this?", "first", "watching this at 3am",
        "part 2?", "who else is here from the fyp", "link?", "ok", "what app is that",
        "tag a friend", "saving this for later", "what time is it there",
    ),
    (SPANISH, POSITIVE): (
        "me encanta", "qué bonito", "esto está buenísimo", "lo mejor que he visto",
        "no está mal", "muy útil, gracias", "qué chido", "eres lo máximo",
        "me hiciste el día", "brutal", "me encantó", "qué buen contenido",
        "increíble", "lo amo",
    ),
    (SPANISH, NEGATIVE): (
        "no me gustó", "qué aburrido", "esto es horrible", "no vale la pena", "muy malo",
        "no sirve para nada", "qué asco", "cada vez peor", "me voy de esta app",
        "no es gracioso", "odio esto", "pésimo contenido", "no me gusta nada",
        "qué decepción",
    ),
    (SPANISH, NEUTRAL): (
        "¿de dónde es?", "¿qué canción es?", "primero", "¿parte 2?", "¿alguien más?",
        "link?", "ok", "etiqueta a un amigo", "lo veo a las 3am", "guardado para después",
    ),
}
OPENERS = {
    ENGLISH: ("", "", "", "honestly ", "ngl ", "bro ", "lol ", "omg "),
    SPANISH: ("", "", "", "la verdad ", "jaja ", "wey ", "neta ", "bro "),
}
SLANG = {
    ENGLISH: ("", "", "", " fr", " tbh", " lol", " no cap"),
    SPANISH: ("", "", "", " xd", " jajaja", " wey", " la neta"),
}
EMOJI = {
    POSITIVE: ("", " 😍", " 🔥", " ❤️", " 👏", " 💯", " 😂"),
    NEGATIVE: ("", " 👎", " 😒", " 🙄", " 😡", " 😴"),
    NEUTRAL: ("", " 🤔", " 👀", " 🎵"),
}


class _Pool:
    """A flat array of choices with an offset and a size per group."""

    def __init__(self, groups: dict, keys: list):
        self.values = np.array([v for k in keys for v in groups[k]], dtype=object)
        self.size = np.array([len(groups[k]) for k in keys])
        self.start = np.concatenate([[0], np.cumsum(self.size)[:-1]])

    def pick(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        offset = np.floor(rng.random(len(group)) * self.size[group]).astype(np.int64)
        return self.values[self.start[group] + offset]


_PHRASES = _Pool(PHRASES, [(lang, pol) for lang in (ENGLISH, SPANISH)
                           for pol in (NEGATIVE, NEUTRAL, POSITIVE)])
_OPENERS = _Pool(OPENERS, [ENGLISH, SPANISH])
_SLANG = _Pool(SLANG, [ENGLISH, SPANISH])
_EMOJI = _Pool(EMOJI, [NEGATIVE, NEUTRAL, POSITIVE])


def draw_polarity(p_negative: np.ndarray, rng: np.random.Generator,
                  positive_share: float = 0.62) -> np.ndarray:
    """NEGATIVE with ``p_negative``, else POSITIVE or NEUTRAL (``positive_share`` of the rest)."""
    u = rng.random(len(p_negative))
    rest = (u - p_negative) / np.maximum(1.0 - p_negative, 1e-9)
    return np.where(u < p_negative, NEGATIVE, np.where(rest < positive_share, POSITIVE, NEUTRAL))


def build_comments(language: np.ndarray, polarity: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Comment texts (object array) for per-comment language (ENGLISH/SPANISH) and polarity."""
    language = np.asarray(language, dtype=np.int64)
    polarity = np.asarray(polarity, dtype=np.int64)
    phrase = _PHRASES.pick(language * 3 + polarity, rng)
    text = _OPENERS.pick(language, rng) + phrase + _SLANG.pick(language, rng)
    return text + _EMOJI.pick(polarity, rng)
