/** Keeps the most recent `capacity` bytes of a byte stream, as the chunks that carried them. */
export class RingBuffer {
  readonly capacity: number;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (chunk.length >= this.capacity) {
      this.#chunks = [chunk.subarray(chunk.length - this.capacity)];
      this.#size = this.capacity;
      return;
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.capacity) {
      const first = this.#chunks[0]!;
      const excess = this.#size - this.capacity;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#size -= first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#size -= excess;
      }
    }
  }

  get size(): number {
    return this.#size;
  }

  /** The kept bytes, oldest first, as chunks (no copy). */
  chunks(): readonly Buffer[] {
    return this.#chunks;
  }
}
