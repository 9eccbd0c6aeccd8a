# responder: one image for the receiver (`serve`) and the workers (`worker`).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY responder ./responder
COPY playbooks ./playbooks
RUN pip install . && useradd --system --uid 10001 --no-create-home responder
USER responder
ENV RESPONDER_PLAYBOOKS_DIR=/app/playbooks
EXPOSE 8080
ENTRYPOINT ["responder"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
