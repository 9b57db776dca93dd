"""Tunable constants of the synthetic population and its behaviour.

Every rate is per user-day unless it says otherwise; money is in USD before conversion to the
user's currency. Changing a value changes the generated data for every seed.
"""

from __future__ import annotations

import numpy as np

from mktpipe import schemas

SECONDS_PER_DAY = 86_400

# --- id layout: prefix and zero-padded width ---------------------------------------------------
ID_FORMATS = {
    "user": ("u", 7),
    "video": ("v", 8),
    "event": ("e", 10),
    "comment": ("cm", 9),
    "order": ("o", 9),
    "session": ("s", 10),
    "sound": ("snd", 5),
}

# --- geography: country -> (weight, currency, language weights over LANGUAGES en/es/pt) -------
COUNTRIES = ("US", "GB", "MX", "CO", "AR", "ES", "BR")
COUNTRY_WEIGHTS = np.array([0.34, 0.10, 0.18, 0.08, 0.07, 0.13, 0.10])
COUNTRY_CURRENCY = ("USD", "GBP", "MXN", "COP", "ARS", "EUR", "BRL")
COUNTRY_LANGUAGE_WEIGHTS = np.array(
    [
        [0.85, 0.15, 0.00],  # US
        [1.00, 0.00, 0.00],  # GB
        [0.03, 0.97, 0.00],  # MX
        [0.02, 0.98, 0.00],  # CO
        [0.02, 0.98, 0.00],  # AR
        [0.05, 0.95, 0.00],  # ES
        [0.10, 0.00, 0.90],  # BR
    ]
)
# units of local currency per USD (a fixed synthetic rate; ingest may keep its own table)
FX_PER_USD = {currency: 1.0 / rate for currency, rate in schemas.FX_TO_USD.items()}

# --- demographics (same order as the schemas enums) --------------------------------------------
AGE_BAND_WEIGHTS = np.array([0.12, 0.34, 0.28, 0.14, 0.08, 0.04])
GENDER_WEIGHTS = np.array([0.50, 0.42, 0.03, 0.05])
DEVICE_WEIGHTS = np.array([0.45, 0.48, 0.07])
CHANNEL_WEIGHTS = np.array([0.45, 0.25, 0.12, 0.10, 0.08])
APP_VERSIONS = {
    "ios": ("33.1.0", "33.2.1", "34.0.0", "34.1.2"),
    "android": ("33.1.1", "33.2.0", "34.0.1", "34.1.0", "32.9.4"),
    "web": ("web-2024.1", "web-2024.2"),
}

# --- population --------------------------------------------------------------------------------
HISTORY_DAYS = 730  # pre-existing users signed up within this many days before start
NEW_USER_DAILY_RATE = 0.004  # new signups per day, as a share of the pre-existing base
DORMANT_SHARE = 0.25  # pre-existing users who already churned before the window
LOYAL_SHARE = 0.12  # users with zero churn hazard (churn_date null)
CREATOR_SHARE = 0.03
MIN_CREATORS_PER_COMMUNITY = 3
CREATOR_PARETO_ALPHA = 0.9  # creator attractiveness tail index (smaller = heavier tail)
# interest communities are the content categories; unequal sizes
COMMUNITIES = schemas.CATEGORIES
COMMUNITY_WEIGHTS = np.array([0.15, 0.14, 0.12, 0.11, 0.10, 0.09, 0.08, 0.08, 0.07, 0.06])

ENGAGEMENT_LOGNORMAL = (-0.35, 0.75)  # mean, sigma of log engagement
CHURN_BASE_HAZARD = 0.0065  # daily hazard at engagement 1
CHURN_HAZARD_SIGMA = 0.7
CHURN_ENGAGEMENT_EXPONENT = -0.5  # less engaged users churn faster
NEW_USER_HAZARD_FACTOR = 1.6
PURCHASE_GAMMA = (0.35, 0.14)  # shape, scale of expected purchases per active day
GRUMPINESS_BETA = (1.0, 12.0)  # per-user base share of negative comments

# --- daily activity ----------------------------------------------------------------------------
ACTIVE_BASE = 0.11  # daily activity probability at engagement 1
ACTIVE_MIN, ACTIVE_MAX = 0.02, 0.92
SIGNUP_DAY_ACTIVE = 0.95
WEEKDAY_FACTOR = np.array([0.95, 0.93, 0.95, 0.98, 1.05, 1.22, 1.18])  # Mon..Sun
VIEWS_BASE = 8.0  # mean extra views per active day at engagement 1
SESSIONS_BASE = 0.6
PRE_CHURN_WINDOW = 21  # days over which activity declines before churn
PRE_CHURN_ACTIVE_DROP = 0.6  # at churn day the activity probability is cut by this share
PRE_CHURN_VIEWS_DROP = 0.45
PRE_CHURN_NEGATIVE_BOOST = 0.45
IN_COMMUNITY_VIEW_SHARE = 0.75
# hour-of-day weights of session starts (UTC), evenings busiest
HOUR_WEIGHTS = np.array(
    [3.0, 2.2, 1.5, 1.0, 0.8, 0.8, 1.2, 2.0, 2.6, 2.8, 3.0, 3.2,
     3.6, 3.6, 3.4, 3.4, 3.8, 4.4, 5.2, 6.0, 6.6, 6.4, 5.4, 4.0]
)

# per-view probabilities of secondary events
LIKE_RATE = 0.18
COMMENT_RATE = 0.035
SHARE_RATE = 0.02
PROFILE_VISIT_RATE = 0.04
FOLLOW_RATE = 0.02
FOLLOW_NEWNESS_BOOST = 3.0  # new users follow more in their first weeks
FOLLOW_IN_COMMUNITY_FACTOR = 2.0
FOLLOW_OUT_COMMUNITY_FACTOR = 0.4
CART_RATE = 0.35  # product_click -> add_to_cart
BUY_RATE = 0.45  # add_to_cart -> purchase
CLICK_FLOOR = 0.002

# --- initial follow graph ----------------------------------------------------------------------
FOLLOW_DEGREE_BASE = 3.0
FOLLOW_DEGREE_ENGAGEMENT = 8.0
FOLLOW_COMMUNITY_CREATOR_SHARE = 0.70
FOLLOW_COMMUNITY_FRIEND_SHARE = 0.10  # the rest goes to creators of any community

# --- videos ------------------------------------------------------------------------------------
VIDEO_HISTORY_DAYS = 60
VIDEO_POST_RATE = 0.15  # videos per creator-day at attractiveness 1
VIDEO_POST_EXPONENT = 0.3
VIDEO_CATEGORY_FIDELITY = 0.85  # share of a creator's videos in their own category
DURATION_LOGNORMAL = (3.4, 0.7)  # seconds
N_SOUNDS = 5_000
REPLAY_SHARE = 0.05  # views that loop past the end of the video

# order value in USD by category: (mean, sigma) of the log
ORDER_LOG_USD = {
    "beauty": (3.3, 0.6), "fashion": (3.7, 0.7), "fitness": (3.5, 0.7), "food": (2.8, 0.5),
    "gaming": (3.6, 0.8), "music": (2.9, 0.6), "tech": (4.3, 0.8), "travel": (4.8, 0.9),
    "comedy": (2.7, 0.5), "education": (3.6, 0.7),
}

HASHTAGS = {
    "beauty": ("makeup", "skincare", "grwm", "maquillaje"),
    "fashion": ("ootd", "outfit", "streetstyle", "moda"),
    "fitness": ("gymtok", "workout", "fitness", "rutina"),
    "food": ("foodtok", "recipe", "receta", "cooking"),
    "gaming": ("gaming", "gamer", "fortnite", "minecraft"),
    "music": ("music", "cover", "musica", "newmusic"),
    "tech": ("techtok", "gadgets", "iphone", "setup"),
    "travel": ("traveltok", "viaje", "travel", "wanderlust"),
    "comedy": ("comedy", "humor", "funny", "meme"),
    "education": ("learnontiktok", "edutok", "aprende", "studytok"),
}
GENERIC_HASHTAGS = ("fyp", "viral", "parati", "foryou", "trending")
