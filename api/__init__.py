"""The HTTP edge of prepmeet: FastAPI application, schemas, routers and the command line."""
