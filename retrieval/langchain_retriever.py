"""The retrieval pipeline as a LangChain `BaseRetriever`, for people who build their own chains.

Example:
    >>> from retrieval.langchain_retriever import EragRetriever
    >>> lc = EragRetriever(retriever=Retriever(get_settings()), top_k=4, groups=["all"])
    >>> docs = lc.invoke("How do I reset my VPN token?")
    >>> docs[0].metadata["file_name"], docs[0].metadata["scores"]
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

_METADATA_SKIP = {"text", "f8", "slot", "live", "version"}


class EragRetriever(BaseRetriever):
    """Wraps `retrieval.pipeline.Retriever`; each hit becomes a `Document` with its payload as metadata.

    `groups` is required, as in `Retriever.run`: the asking user's access groups (an empty, blank or string value
    is refused when searching), or `erag.access.UNRESTRICTED` for a local admin tool.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any
    groups: Any
    top_k: int = 5
    filters: Any = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = self.retriever.run(query, top_k=self.top_k, groups=self.groups, filters=self.filters)
        documents = []
        for hit in result.hits:
            metadata = {k: v for k, v in hit.payload.items() if k not in _METADATA_SKIP}
            metadata.update(id=hit.id, score=hit.score, scores=dict(hit.scores), matched=list(hit.matched),
                            location=hit.location())
            documents.append(Document(page_content=hit.text, metadata=metadata))
        return documents
