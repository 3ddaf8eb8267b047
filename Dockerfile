# syntax=docker/dockerfile:1
# One Dockerfile for every function:  docker build --build-arg FUNCTION=create-task -t dev.local/create-task .
#
#   deps          third-party packages only, cached until pyproject.toml changes
#   todo          + the shared library, its CLI and web/ (image dev.local/todo: the gateway, the migration Job)
#   function-dev  + one functions/<FUNCTION>/main.py, reloading on synced sources (skaffold's minikube profile)
#   function      + one functions/<FUNCTION>/main.py, served by functions-framework (the default target)
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS deps
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Only the dependency list of pyproject.toml goes into this layer: editing code (or the README) keeps it.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
 && pip install -r requirements.txt \
 && groupadd --system --gid 10001 todo \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin todo

FROM deps AS todo
# The library runs from its sources (no wheel): file sync can replace them in a running container.
ENV PYTHONPATH=/app/shared
COPY shared/todo/ shared/todo/
# The web client: the gateway (`todo proxy`, this image) serves it at / from /app/web (todo.edge.static).
COPY web/ web/
# Bytecode compiled at build time: a cold start imports, it does not compile (and cannot write pyc files).
RUN python -m compileall -q shared/todo
USER 10001:10001
CMD ["python", "-m", "todo.cli", "--help"]

FROM todo AS function-source
ARG FUNCTION
RUN test -n "${FUNCTION}" || { echo "build with --build-arg FUNCTION=<a folder of functions/>" >&2; exit 1; }
ENV FUNCTION=${FUNCTION} \
    FUNCTION_SOURCE=/app/functions/${FUNCTION}/main.py \
    PORT=8080
COPY functions/${FUNCTION}/main.py functions/${FUNCTION}/main.py
# Compiled here too, as root (the user cannot write /app): the cold start reads its bytecode.
USER root
RUN python -m compileall -q functions/${FUNCTION}
USER 10001:10001
EXPOSE 8080

FROM function-source AS function-dev
# skaffold sync writes into /app as the container's user; uvicorn restarts the worker on each change.
USER root
RUN chown -R 10001:10001 /app
USER 10001:10001
CMD ["sh", "-c", "export FUNCTION_TARGET=\"$(echo \"$FUNCTION\" | tr - _)\"; exec uvicorn --factory functions_framework.aio:create_asgi_app --host 0.0.0.0 --port \"$PORT\" --reload --reload-dir /app/shared --reload-dir /app/functions"]

FROM function-source AS function
# functions-framework --asgi: gunicorn with one uvicorn worker; Knative scales by pods, not workers.
CMD ["sh", "-c", "exec functions-framework --asgi --target \"$(echo \"$FUNCTION\" | tr - _)\" --source \"$FUNCTION_SOURCE\""]
