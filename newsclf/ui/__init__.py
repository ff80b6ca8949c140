"""The one Streamlit-aware corner of newsclf: the page frame, cached loaders, forms and render helpers.

    frame.py         page setup, sidebar, navigation, empty states, plain-text rendering
    cache.py         cached loaders (runs, predictions, metrics, models, corpus); they lock internally
    data_view.py     getting the corpus (import / download)
    train_form.py    the training form built from RunConfig
    jobs_view.py     the live job panel
    explain_view.py  explanation panels

Importing this package does not import Streamlit; its submodules do. Tables live in
newsclf.compare, figures in newsclf.plots.
"""
