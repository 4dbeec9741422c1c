"""aptio: the COM apartment threading model for asyncio."""
from ._exceptions import AptioError as AptioError
