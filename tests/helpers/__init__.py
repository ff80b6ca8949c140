"""Test helpers shared by the test modules: the fixture corpus, tiny models, app and job fixtures."""
