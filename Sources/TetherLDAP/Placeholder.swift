enum _PlaceholderTetherLDAP {}
