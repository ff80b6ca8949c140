"""The one Streamlit-aware corner of newsclf: cached resources, forms and render helpers.

Importing this package does not import Streamlit; its submodules (except `tables`) do.
"""
