# One image for every service of the pipeline (producer, consumer, emulator).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY auditstream auditstream
COPY producer producer
COPY consumer consumer
COPY schemas schemas
COPY sql sql
COPY emulator emulator
COPY ops ops
RUN pip install --no-cache-dir -c constraints.txt '.[emulator]'
USER nobody
ENTRYPOINT ["auditstream"]
