"""The shipped profiles (TOML); this folder is installed as the package ``jepa_tui.profiles``."""
