"""Feature tiers built from daily OHLCV with Polars expressions, and their versioned files."""

from fintrain.features.build import build_features, feature_plan
from fintrain.features.store import (
    FeatureBuild,
    dataset_name,
    ensure_features,
    ensure_features_many,
    features_folder,
    features_path,
    processed_manifest,
    read_features,
)
from fintrain.features.tiers import (
    TIER_SUMMARIES,
    TIERS,
    Feature,
    Helper,
    feature_names,
    get_tier,
    tier_hash,
    tier_warmup,
)

__all__ = [
    "TIERS",
    "TIER_SUMMARIES",
    "Feature",
    "FeatureBuild",
    "Helper",
    "build_features",
    "dataset_name",
    "ensure_features",
    "ensure_features_many",
    "feature_names",
    "feature_plan",
    "features_folder",
    "features_path",
    "get_tier",
    "processed_manifest",
    "read_features",
    "tier_hash",
    "tier_warmup",
]
