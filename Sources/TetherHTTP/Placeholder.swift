enum _PlaceholderTetherHTTP {}
