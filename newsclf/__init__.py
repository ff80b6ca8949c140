"""newsclf: train, compare and explain text classifiers on 20 Newsgroups.

The library never imports Streamlit; `newsclf.ui` is the one Streamlit-aware corner.
"""
__version__ = "0.1.0"
