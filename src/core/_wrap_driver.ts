/**
 * The one way a feature wraps the pool's driver (the pooler guard, capGroup):
 * a new object whose members are the driver's own, bound to it once (drivers
 * may be class instances with private fields), with `overrides` in place of
 * some. An optional member the driver lacks stays absent, since the pool tests
 * for them (`cancel`, `setPipelined`, ...). Plain properties, not a Proxy: the
 * pool calls these on its hot path.
 *
 * @module
 */
import type { Driver } from "../driver.ts";

/** `driver` with `overrides` in place of some of its members; the rest are its own, bound to it. */
export function wrapDriver<C>(driver: Driver<C>, overrides: Partial<Driver<C>>): Driver<C> {
  const wrapped = Object.create(driver) as Driver<C>;
  const seen = new Set<PropertyKey>();
  for (let o: object | null = driver; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Reflect.ownKeys(o)) {
      if (key === "constructor" || seen.has(key)) continue;
      seen.add(key);
      const value = Reflect.get(driver, key);
      if (typeof value === "function") {
        Object.defineProperty(wrapped, key, { value: value.bind(driver), writable: true, configurable: true });
      }
    }
  }
  for (const [key, value] of Object.entries(overrides)) {
    Object.defineProperty(wrapped, key, { value, writable: true, configurable: true });
  }
  return wrapped;
}
