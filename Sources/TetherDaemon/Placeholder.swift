enum _PlaceholderTetherDaemon {}
