enum _PlaceholderTetherSCIM {}
