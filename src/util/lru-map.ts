/**
 * A Map that keeps at most `capacity` entries: `set` makes a key the newest, and past the
 * capacity the oldest is evicted (and reported). Iteration runs oldest first. What the
 * appliance remembers per machine or per address lives in one of these, so a rack booting
 * in a loop, or a stream of new MACs, cannot grow the process.
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(
    readonly capacity: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The value, without making the key any newer. */
  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Stores the value as the newest entry, evicting the oldest when full. */
  set(key: K, value: V): this {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.capacity) this.evictOldest();
    this.map.set(key, value);
    return this;
  }

  /** The value, made the newest entry. */
  touch(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  /** Oldest first. Deleting the entry being visited is allowed. */
  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }

  private evictOldest(): void {
    const oldest = this.map.entries().next();
    if (oldest.done) return;
    const [key, value] = oldest.value;
    this.map.delete(key);
    this.onEvict?.(key, value);
  }
}
