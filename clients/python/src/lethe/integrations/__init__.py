"""Integrations with the frameworks RAG pipelines are written in.

- :mod:`lethe.integrations.langchain` (``pip install 'lethe-client[langchain]'``)
- :mod:`lethe.integrations.llamaindex` (``pip install 'lethe-client[llamaindex]'``)

Each module imports its framework when it is imported, never before: the base client
does not need either framework. Both give a pipeline lineage and subject tags in Lethe
without changing how it retrieves; see each module's docstring for the shape and why.
"""
