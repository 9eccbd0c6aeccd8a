FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY responder ./responder
COPY playbooks ./playbooks
RUN pip install --no-cache-dir . && useradd --system --uid 10001 responder
USER responder
ENV RESPONDER_PLAYBOOKS_DIR=/app/playbooks
EXPOSE 8080
ENTRYPOINT ["responder"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
