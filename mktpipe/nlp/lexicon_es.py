"""Spanish sentiment: a hand-written valence lexicon and a VADER-style rule scorer over it.

VADER (vaderSentiment) is English-only, and no maintained PyPI package ships a Spanish model or
a permissively licensed Spanish lexicon that works offline (see the sentiment module's docstring
for what was measured). So mktpipe carries its own:

* Provenance: every entry below was written by hand for mktpipe (own work, under the project's
  licence; no third-party lexicon was copied). Valences use VADER's scale, -4 (most negative) to
  +4 (most positive), for informal Spanish as written in comments (Spain and Latin America).
* Keys are lower case with accents and the tilde removed ("pésimo" -> "pesimo", "año" -> "ano"),
  so unaccented social-media spelling matches.
* The rules are VADER's (Hutto & Gilbert 2014, MIT-licensed code; constants imported from
  vaderSentiment): boosters and dampeners before a word, negation in the three words before it
  (Spanish negative concord: several negators negate once), ALL-CAPS emphasis, contrast with
  "pero" (before x0.5, after x1.5), "!" and "?" emphasis, and the same normalisation to a
  compound score in [-1, 1]. Spanish additions: intensifiers after the word ("me gustó mucho"),
  "poco" as a negator ("poco original") unless "un poco", superlatives in -ísimo, plural and
  gender variants, elongations ("buenooo"), laughter ("jajaja"), multiword expressions.
"""

from __future__ import annotations

import re
import unicodedata

from vaderSentiment.vaderSentiment import B_INCR, C_INCR, N_SCALAR, normalize

# --- the lexicon ----------------------------------------------------------------------------
# whole words; a valence of 0 blocks a wrong match through the variant rules (cara -> caro)
LEXICON: dict[str, float] = {
    # positive: quality, beauty, fun
    "bueno": 2.0, "buen": 2.0, "bien": 1.5, "mejor": 2.0, "excelente": 3.0, "genial": 2.5,
    "increible": 3.0, "impresionante": 3.0, "asombroso": 3.0, "espectacular": 3.0,
    "fantastico": 3.0, "estupendo": 3.0, "magnifico": 3.0, "maravilloso": 3.0, "maravilla": 3.0,
    "perfecto": 3.0, "perfeccion": 3.0, "brillante": 2.5, "sublime": 3.0, "divino": 2.5,
    "hermoso": 2.5, "bello": 2.5, "belleza": 2.5, "precioso": 2.5, "preciosidad": 2.5,
    "bonito": 2.0, "lindo": 2.0, "guapo": 2.0, "tierno": 2.0, "ternura": 2.0, "adorable": 2.5,
    "cuqui": 2.0, "cute": 2.0, "mono": 1.0, "dulce": 1.5, "elegante": 1.5, "top": 2.0,
    "epico": 2.5, "legendario": 2.5, "leyenda": 2.0, "joya": 2.5, "tesoro": 2.0, "lujo": 2.0,
    "gloria": 2.0, "idolo": 2.0, "genio": 2.5, "crack": 2.5, "capo": 2.0, "maestro": 1.5,
    "reina": 1.5, "rey": 1.0, "diosa": 2.0, "talento": 2.0, "talentoso": 2.5, "arte": 1.5,
    "creativo": 2.0, "original": 1.5, "inteligente": 2.0, "util": 2.0, "practico": 1.5,
    "facil": 1.0, "rapido": 1.0, "recomendable": 2.0, "recomendado": 2.0, "calidad": 0.5,
    "decente": 1.0, "aceptable": 0.5, "correcto": 0.5, "interesante": 1.5, "especial": 1.5,
    "divertido": 2.0, "gracioso": 1.5, "chistoso": 1.5, "entretenido": 1.5, "risa": 1.5,
    "risas": 1.5, "rei": 1.5, "reir": 1.5, "riendo": 1.5, "carcajada": 2.0, "gracia": 1.5,
    "rico": 2.0, "delicioso": 3.0, "sabroso": 2.0, "nam": 1.5, "fresco": 1.0, "limpio": 0.5,
    "feliz": 2.5, "felicidad": 2.5, "contento": 2.0, "satisfecho": 2.0, "orgullo": 2.0,
    "orgulloso": 2.0, "tranquilo": 1.0, "calma": 1.0, "paz": 1.5, "relajante": 1.5,
    "esperanza": 1.5, "ganas": 1.0, "amor": 3.0, "amo": 3.0, "ama": 3.0, "aman": 3.0,
    "ame": 3.0, "amamos": 3.0, "amando": 3.0, "amaria": 2.5, "adoro": 3.0, "adora": 3.0,
    "adoran": 3.0, "corazon": 1.5, "cariño": 2.0, "carino": 2.0, "gracias": 1.5,
    "thanks": 1.5, "agradecido": 2.0, "bendicion": 2.0, "bendiciones": 2.0, "bendecido": 2.0,
    "felicidades": 2.5, "enhorabuena": 2.5, "bravo": 1.5, "ole": 1.5, "viva": 1.5,
    "exito": 2.0, "ganador": 2.0, "merece": 1.5, "mereces": 1.5, "mereceria": 1.0,
    "sirve": 1.0, "sirvio": 1.0, "sirven": 1.0, "funciona": 1.2, "funciono": 1.2,
    "funcionan": 1.2, "salvaste": 2.0, "salvo": 1.5, "ayudo": 1.5, "ayudaste": 2.0,
    "simpatico": 2.0, "amable": 2.0, "motivacion": 1.5, "motivador": 1.5, "viral": 0.5,
    "infravalorado": 1.5, "subestimado": 1.5, "underrated": 1.5, "love": 3.0, "nice": 2.0,
    "cool": 2.0, "wow": 2.0, "guau": 2.0, "aww": 1.5, "awww": 1.5, "omg": 0.5, "lol": 1.5,
    "lmao": 2.0, "xd": 1.5, "wuju": 2.0, "yay": 2.0, "barato": 0.5,
    # positive: regional slang
    "chido": 2.0, "chidisimo": 3.0, "chingon": 2.5, "padrisimo": 3.0, "chevere": 2.0,
    "bacan": 2.0, "bacano": 2.0, "copado": 2.0, "groso": 2.0, "grosso": 2.0, "mola": 2.0,
    "molan": 2.0, "mole": 0.0, "guay": 2.0, "chulo": 2.0, "majo": 2.0, "currado": 2.0,
    "brutal": 2.0, "bestial": 2.0, "tremendo": 1.5, "flipante": 2.0, "pasada": 1.0,
    # negative: quality, disgust, boredom
    "mal": -2.5, "malo": -2.5, "peor": -2.5, "horrible": -3.0, "horroroso": -3.0,
    "espantoso": -3.0, "terrible": -3.0, "pesimo": -3.0, "fatal": -3.0, "nefasto": -3.0,
    "deplorable": -3.0, "lamentable": -2.5, "penoso": -2.5, "patetico": -2.5,
    "mediocre": -2.0, "regular": -0.5, "feo": -2.0, "asco": -3.0, "asqueroso": -3.0,
    "repugnante": -3.0, "vomito": -2.5, "vomitar": -2.5, "nauseas": -2.0, "sucio": -1.5,
    "cochino": -2.0, "guarro": -2.0, "basura": -2.5, "porqueria": -2.5, "mierda": -3.0,
    "caca": -1.5, "bodrio": -2.5, "cutre": -2.0, "hortera": -1.5, "chafa": -2.0,
    "gacho": -2.0, "penca": -2.0, "fome": -2.0, "paila": -2.0, "chimbo": -2.0,
    "trucho": -2.0, "soso": -1.5, "insipido": -1.5, "tedioso": -2.0, "pesado": -1.5,
    "insoportable": -3.0, "toston": -2.0, "meh": -1.0, "bajon": -2.0, "aburrido": -2.0,
    "lento": -1.5, "caro": -1.5, "cara": 0.0, "roto": -1.5, "inutil": -2.5,
    "fallo": -1.5, "falla": -1.5, "error": -1.5, "problema": -1.5, "fracaso": -2.5,
    "perder": -1.0, "perdi": -1.5, "perdida": -2.0, "duda": -0.5, "sobrevalorado": -2.0,
    "overrated": -1.5, "cringe": -2.0, "cringy": -2.0, "trash": -2.0, "fake": -2.0,
    "fail": -2.0, "clickbait": -1.5, "spam": -1.5, "hate": -2.5, "wtf": -1.5, "puaj": -2.0,
    "ash": -1.0, "ugh": -1.5,
    # negative: falsehood, abuse, danger, insults
    "falso": -2.0, "mentira": -2.5, "mentiroso": -2.5, "miente": -2.0, "mienten": -2.0,
    "actuado": -1.5, "guionizado": -1.5, "estafa": -3.0, "estafador": -3.0, "fraude": -3.0,
    "timo": -2.5, "robo": -2.5, "engano": -2.5, "enganan": -2.5, "enganoso": -2.5,
    "peligroso": -2.0, "peligro": -1.5, "miedo": -1.5, "susto": -1.5, "ridiculo": -2.0,
    "absurdo": -2.0, "tonto": -2.0, "tonteria": -2.0, "bobada": -1.5, "boludez": -1.5,
    "pendejada": -2.0, "estupido": -2.5, "idiota": -2.5, "imbecil": -3.0, "pendejo": -2.5,
    "culero": -2.5, "payaso": -1.5, "grosero": -2.0, "irrespetuoso": -2.5, "injusto": -2.0,
    "injusticia": -2.0, "verguenza": -2.0, "vergonzoso": -2.5, "roche": -1.5, "garca": -2.5,
    "gonorrea": -2.5, "malparido": -3.0, "maldito": -2.0, "maldicion": -2.0, "jodido": -2.0,
    "pinche": -1.0, "naco": -1.5, "chamuyo": -1.5,
    # negative: feelings
    "triste": -2.0, "tristeza": -2.0, "deprimente": -2.5, "depresion": -2.0, "ansiedad": -2.0,
    "estres": -1.5, "angustia": -2.0, "dolor": -2.0, "duele": -1.5, "sufrir": -2.0,
    "llorar": -1.0, "lloro": -1.0, "llore": -1.0, "muerte": -2.0, "rabia": -2.5,
    "coraje": -1.0, "furioso": -2.5, "cansado": -1.5, "harto": 0.0, "odio": -3.0, "odia": -3.0,
    "odian": -3.0, "odie": -3.0, "odiamos": -3.0, "odiar": -3.0, "odioso": -3.0,
    "decepcion": -2.5, "lastima": -1.5, "pena": -1.5, "preocupa": -1.5,
    # words that look like sentiment words through a variant rule but are not
    "contenido": 0.0, "motivo": 0.0, "precio": 0.0, "padre": 0.0, "madre": 0.0,
    "funcion": 0.0, "puro": 0.0, "super": 0.0, "si": 0.0, "vale": 0.0, "ira": 0.0,
    "gustavo": 0.0, "amanda": 0.0, "adorno": 0.0, "adornos": 0.0,
}

# prefixes (at least 4 letters) for verb and adjective families; the longest match wins
STEMS: dict[str, float] = {
    "encant": 3.0, "gust": 2.0, "disgust": -2.0, "enamor": 3.0, "disfrut": 2.0,
    "recomend": 2.0, "recomiend": 2.0, "agradec": 2.0, "felicit": 2.5, "sorprend": 1.5,
    "maravill": 3.0, "perfect": 3.0, "espectacul": 3.0, "fantast": 3.0, "estupend": 3.0,
    "excelent": 3.0, "impresionant": 3.0, "hermos": 2.5, "precios": 2.5, "bonit": 2.0,
    "lind": 2.0, "guap": 2.0, "chingon": 2.5, "divert": 2.0, "inspir": 2.0, "emocion": 1.5,
    "alegr": 2.0, "merec": 1.5, "flip": 1.5, "ador": 3.0, "mejor": 2.0, "genial": 2.5,
    "aburr": -2.0, "decepcion": -2.5, "molest": -2.0, "fastidi": -2.0, "estaf": -3.0,
    "arruin": -2.5, "asquer": -3.0, "horribl": -3.0, "terribl": -3.0, "pesim": -3.0,
    "enoj": -2.0, "enfad": -2.0, "indign": -2.5, "trist": -2.0, "deprim": -2.0,
    "sufr": -2.0, "fracas": -2.5, "vomit": -2.5, "apest": -2.5, "mierd": -3.0,
    "ridicul": -2.0, "patetic": -2.5, "horror": -3.0, "sobrevalor": -2.0, "odios": -3.0,
    "preocup": -1.5, "asust": -1.5, "frustr": -2.5, "lament": -2.0, "insult": -2.0,
    "menti": -2.5, "fallid": -1.5, "fascin": 3.0, "arrepient": -2.0, "arrepent": -2.0,
}

# multiword expressions, matched (longest first) before single words; a valence of 0 keeps
# their words from being read one by one ("no mames" is surprise, not a negation)
PHRASES: dict[str, float] = {
    "vale la pena": 2.0, "valio la pena": 2.0, "pena ajena": -2.5, "que pena": -1.5,
    "buena onda": 2.5, "mala onda": -2.5, "buena vibra": 2.0, "mala vibra": -2.0,
    "buen rollo": 2.0, "mal rollo": -2.0, "que rollo": -1.5, "lo maximo": 3.0,
    "de lujo": 2.5, "un lujo": 2.5, "una pasada": 2.5, "que pasada": 2.5, "la hostia": 2.5,
    "de puta madre": 3.0, "a toda madre": 3.0, "que poca madre": -2.5, "vale madre": -2.0,
    "vale madres": -2.0, "me vale": -1.0, "que padre": 2.5, "bien padre": 2.5,
    "muy padre": 2.5, "esta padre": 2.5, "de pelos": 2.5, "la raja": 2.5, "que chimba": 2.5,
    "no mames": 0.0, "no manches": 0.0, "ni modo": -0.5, "que oso": -1.5,
    "se paso de lanza": -2.0, "paso de lanza": -2.0, "de mierda": -3.0, "una mierda": -3.0,
    "falta de respeto": -2.5, "perdida de tiempo": -2.5, "perdiendo el tiempo": -2.0,
    "se rompio": -2.0, "nunca llego": -2.0, "no llego": -1.5, "nunca mas": -2.0,
    "no vuelvo": -2.0, "no volvere": -2.0,
    "no lo compren": -2.0, "no compren": -2.0, "deja de": -1.0, "dejen de": -1.0,
    "ya basta": -2.0, "estoy harto": -2.5, "estoy harta": -2.5, "me tiene harto": -2.5,
    "me tiene harta": -2.5, "harto de": -2.0, "harta de": -2.0, "te quiero": 3.0,
    "te amo": 3.0, "lo quiero": 1.5, "la quiero": 1.5, "sigue asi": 2.0, "sigan asi": 2.0,
    "mas o menos": -0.5, "sin duda": 0.0, "sin embargo": 0.0, "no obstante": 0.0,
    "dar risa": 1.5, "da risa": 1.5, "me muero de risa": 2.5, "muerto de risa": 2.5,
    "hace falta": 0.0, "me hizo el dia": 2.5, "me alegro": 2.0, "me salvo": 2.0,
    "lo mejor": 2.5, "lo peor": -2.5, "la neta": 0.0, "que onda": 0.0,
    # place names and greetings
    "puerto rico": 0.0, "costa rica": 0.0, "buenos aires": 0.0, "buenos dias": 0.0,
    "buenas tardes": 0.0, "buenas noches": 0.0,
}

NEGATIONS = frozenset(
    "no nunca jamas ni tampoco nada nadie ningun ninguno ninguna sin nel nop nope".split()
)
# contrastive conjunctions: what comes before counts half, what comes after 1.5 times
CONTRAST = frozenset({"pero", "sin embargo", "no obstante", "but"})

# intensifiers in the three words before a sentiment word (B_INCR is VADER's 0.293)
BOOSTERS: dict[str, float] = {
    **{w: B_INCR for w in (
        "muy super re requete recontra demasiado tan tanto mucho muchisimo bastante sumamente "
        "extremadamente increiblemente totalmente completamente absolutamente realmente "
        "verdaderamente mega ultra hiper mas bien tremendo tremenda full mil puro pura "
        "taaan taan bien"
    ).split()},
    **{w: -B_INCR for w in "algo medio casi apenas ligeramente levemente".split()},
}
# boosters that count only right before the word ("qué bonito", "tan lindo")
ADJACENT_BOOSTERS: dict[str, float] = {"que": B_INCR}
# intensifiers in the two words after it ("me gustó mucho", "mola mucho")
POST_BOOSTERS: dict[str, float] = {
    w: B_INCR for w in "mucho muchisimo demasiado bastante monton chingo".split()
}
# words with their own valence that act as boosters when a sentiment word follows
DUAL_WORDS = frozenset({"bien", "tremendo", "tremenda"})
SUPERLATIVE_BOOST = 2 * B_INCR  # "-ísimo" is about "muy muy"

_TOKEN = re.compile(
    r"[:;=]'?-?[)(\]\[dDpP/\\|*]+|<3|[^\W\d_]+(?:'[^\W\d_]+)?|[.,;:!?¡¿()…\n]+"
)
_EMOTICONS = {":)": 2.0, ":-)": 2.0, ";)": 1.5, ":d": 2.5, ":-d": 2.5, "<3": 2.5, ":(": -2.0,
              ":-(": -2.0, ":'(": -2.0, ":/": -1.0, ":p": 1.0, "=)": 2.0, "=(": -2.0}
_BOUNDARY = re.compile(r"^[.,;:!?¡¿()…\n]+$")
_ELONGATED = re.compile(r"([a-z])\1{2,}")
_SUPERLATIVE = re.compile(r"^(.{2,}?)isim[oa]s?$")
_DIMINUTIVE = re.compile(r"^(.{3,}?)c?it[oa]s?$")
# jaja, jejeje, jajajj, haha, jsjsjs, xD; not hija / hoja
_LAUGHTER = re.compile(r"^(?:j+[aeiou]+){2,}j*$|^(?:h+[ae]+){2,}h*$|^(?:j+s+){2,}j*$|^x+d+$")


def fold(text: str) -> str:
    """Lower case without accents or tilde (the lexicon's key form)."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def _is_laughter(word: str) -> bool:
    return _LAUGHTER.match(word) is not None


class SpanishSentimentAnalyzer:
    """VADER's rules over the Spanish lexicon above.

    ``valence_sum(text)`` is the unnormalised total (VADER's ``sum_s`` with punctuation emphasis);
    ``compound(text)`` is it normalised to [-1, 1]. Emoji are scored by the caller, outside the
    word rules, so that a negation never flips an emoji.
    """

    def __init__(self):
        self._cache: dict[str, tuple[float, bool]] = {}
        self._phrases = {tuple(k.split()): (k, v) for k, v in PHRASES.items()}
        self._max_phrase = max(len(k) for k in self._phrases)

    # -- words ---------------------------------------------------------------------------------
    def lookup(self, word: str) -> tuple[float, bool]:
        """(valence, is_superlative) of one folded word; (0.0, False) when unknown."""
        hit = self._cache.get(word)
        if hit is None:
            hit = self._lookup(word)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[word] = hit
        return hit

    def _lookup(self, word: str) -> tuple[float, bool]:
        if word in LEXICON:
            return LEXICON[word], False
        if word in _EMOTICONS:
            return _EMOTICONS[word], False
        if _is_laughter(word):
            return 1.5, False
        if _ELONGATED.search(word):
            for repl in (r"\1", r"\1\1"):
                value, sup = self._lookup(_ELONGATED.sub(repl, word))
                if value:
                    return value, sup
            return 0.0, False
        value = self._variant(word)
        if value is not None:
            return value, False
        match = _SUPERLATIVE.match(word)
        if match:
            base = match.group(1)
            stems = [base + "o", base + "a", base + "e", base]
            if base.endswith("qu"):
                stems.insert(0, base[:-2] + "co")
            elif base.endswith("gu"):
                stems.insert(0, base[:-2] + "go")
            elif base.endswith("bil"):
                stems.insert(0, base[:-3] + "ble")
            elif base.endswith("c"):
                stems.insert(0, base[:-1] + "z")
            for stem in stems:
                value = self._variant(stem)
                if value:
                    return value, True
        match = _DIMINUTIVE.match(word)
        if match:
            base = match.group(1)
            for stem in (base + "o", base + "a", base + "e"):
                value = self._variant(stem)
                if value:
                    return value, False
        return 0.0, False

    @staticmethod
    def _variant(word: str) -> float | None:
        """Plural and feminine forms, then stems; None when nothing matches."""
        candidates = [word]
        if word.endswith("es"):
            candidates.append(word[:-2])
        if word.endswith("s"):
            candidates.append(word[:-1])
        candidates += [c[:-1] + "o" for c in list(candidates) if c.endswith("a")]
        for cand in candidates:
            if cand in LEXICON:
                return LEXICON[cand]
        for size in range(len(word), 3, -1):
            if word[:size] in STEMS:
                return STEMS[word[:size]]
        return None

    # -- text ----------------------------------------------------------------------------------
    def tokens(self, text: str) -> list[tuple[str, bool]]:
        """(folded token, is_all_caps) with multiword expressions joined by spaces."""
        raw = _TOKEN.findall(text)
        words = [(fold(t), t.isupper() and len(t) > 1) for t in raw]
        out: list[tuple[str, bool]] = []
        i = 0
        while i < len(words):
            for size in range(min(self._max_phrase, len(words) - i), 1, -1):
                key = tuple(w for w, _ in words[i:i + size])
                if key in self._phrases:
                    out.append((self._phrases[key][0], any(c for _, c in words[i:i + size])))
                    i += size
                    break
            else:
                out.append(words[i])
                i += 1
        return out

    def compound(self, text: str) -> float:
        """The normalised sentiment of ``text`` in [-1, 1] (VADER's compound)."""
        return round(normalize(self.valence_sum(text)), 4)

    def valence_sum(self, text: str) -> float:
        """Sum of the word valences after the rules, with "!" / "?" emphasis (unbounded)."""
        if not text or not text.strip():
            return 0.0
        toks = self.tokens(text)
        words = [w for w, _ in toks]
        caps = [c for _, c in toks]
        cap_diff = 0 < sum(caps) < sum(1 for w in words if not _BOUNDARY.match(w))
        raw = [self._raw_valence(w) for w in words]
        sentiments = [0.0] * len(words)
        for i, (value, superlative) in enumerate(raw):
            if not value:
                continue
            if words[i] in DUAL_WORDS and self._next_has_valence(words, raw, i):
                continue  # "bien bonito": a booster here, scored with the next word
            sentiments[i] = self._apply_rules(value, superlative, words, caps, cap_diff, i)
        sentiments = self._contrast(words, sentiments)
        total = sum(sentiments)
        if total:
            emphasis = min(text.count("!"), 4) * 0.292
            questions = text.count("?")
            if questions > 1:
                emphasis += questions * 0.18 if questions <= 3 else 0.96
            total += emphasis if total > 0 else -emphasis
        return total

    def _raw_valence(self, word: str) -> tuple[float, bool]:
        if word in PHRASES:
            return PHRASES[word], False
        if word in NEGATIONS or word in BOOSTERS and word not in DUAL_WORDS:
            return 0.0, False
        if _BOUNDARY.match(word):
            return 0.0, False
        return self.lookup(word)

    @staticmethod
    def _next_has_valence(words, raw, i) -> bool:
        return i + 1 < len(words) and bool(raw[i + 1][0]) and not _BOUNDARY.match(words[i + 1])

    def _apply_rules(self, value, superlative, words, caps, cap_diff, i) -> float:
        sign = 1.0 if value > 0 else -1.0
        if superlative:
            value += sign * SUPERLATIVE_BOOST
        if caps[i] and cap_diff:
            value += sign * C_INCR
        negated = False
        for dist in (1, 2, 3):  # look back, not across punctuation or "pero"
            j = i - dist
            if j < 0 or _BOUNDARY.match(words[j]) or words[j] in CONTRAST:
                break
            word = words[j]
            if word in NEGATIONS:
                negated = True
            elif word == "poco" and dist == 1 and not (j > 0 and words[j - 1] == "un"):
                negated = True  # "poco original" = not original; "un poco" is a dampener
            elif word == "poco":
                value -= sign * B_INCR
            elif word in BOOSTERS:
                value += sign * BOOSTERS[word] * (1.0, 0.95, 0.9)[dist - 1]
            elif dist == 1 and word in ADJACENT_BOOSTERS:
                value += sign * ADJACENT_BOOSTERS[word]
        for dist in (1, 2):  # "me gustó mucho"
            j = i + dist
            if j >= len(words) or _BOUNDARY.match(words[j]):
                break
            if words[j] in POST_BOOSTERS:
                value += sign * POST_BOOSTERS[words[j]]
                break
        return value * N_SCALAR if negated else value

    @staticmethod
    def _contrast(words: list[str], sentiments: list[float]) -> list[float]:
        pivot = next((i for i, w in enumerate(words) if w in CONTRAST), None)
        if pivot is None:
            return sentiments
        return [s * 0.5 if i < pivot else s * 1.5 if i > pivot else s
                for i, s in enumerate(sentiments)]
