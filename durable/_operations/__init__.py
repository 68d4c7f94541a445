"""An operator's actions on ended workflows: resume, restart, fork (Runtime's mixin)."""
