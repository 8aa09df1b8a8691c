"""serve.py: the model behind a URL (a Starlette app run by uvicorn) with the draw-a-digit page, a JSON API,
bounded uploads and batched inference on a worker thread. Imports neither torch nor Lightning itself."""
