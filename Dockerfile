# One image for every service of the pipeline (producer, consumer, emulator).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY auditstream auditstream
COPY producer producer
COPY consumer consumer
COPY schemas schemas
COPY sql sql
COPY emulator emulator
COPY ops ops
# gcc builds the consumer's compiled row reader (consumer/nativerow.pyx), then leaves the image.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir -c constraints.txt '.[emulator]' \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER nobody
ENTRYPOINT ["auditstream"]
