# responder: one image for the receiver (`serve`) and the workers (`worker`).
# Installed from requirements.lock, as scripts/test and scripts/demo install; the default playbooks
# ship inside the package (mount your own and set RESPONDER_PLAYBOOKS_DIR to replace them).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY responder ./responder
COPY playbooks ./playbooks
RUN pip install -c requirements.lock setuptools \
 && pip install -c requirements.lock --no-build-isolation . \
 && useradd --system --uid 10001 --no-create-home responder
USER responder
EXPOSE 8080
ENTRYPOINT ["responder"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
