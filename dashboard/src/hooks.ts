/**
 * Hooks the views share: data that loads, then reloads on matching live events (at most twice a
 * second) or, while the event stream is down, every 5 s; and the hash route.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import type { EventJson } from '../../lib/http/types.js'
import { live } from './events.js'

/** Polling period while the event stream is down. */
const POLL_MS = 5000
/** Shortest time between two reloads caused by events. */
const THROTTLE_MS = 500

/** State of loaded data. */
export interface Loaded<T> {
  data: T | undefined
  error: Error | undefined
  reload: () => void
}

/** Loads `load()`, and again on events that `matches` accepts (or every 5 s without events). */
export function useLive<T>(
  load: () => Promise<T>,
  matches: (e: EventJson) => boolean,
  deps: unknown[],
): Loaded<T> {
  const [data, setData] = useState<T>()
  const [error, setError] = useState<Error>()
  const seq = useRef(0)
  const reload = useCallback(() => {
    const n = ++seq.current
    load().then(
      d => n === seq.current && (setData(d), setError(undefined)),
      (e: Error) => n === seq.current && setError(e),
    )
  }, deps)
  useEffect(() => {
    setData(undefined)
    reload()
    let timer: number | undefined
    let last = 0
    const off = live.on(e => {
      if (!matches(e) && e.type !== 'gap') return
      if (timer !== undefined) return
      const wait = Math.max(0, last + THROTTLE_MS - Date.now())
      timer = window.setTimeout(() => {
        timer = undefined
        last = Date.now()
        reload()
      }, wait)
    })
    const poll = window.setInterval(() => {
      if (!live.connected) reload()
    }, POLL_MS)
    return () => {
      off()
      clearInterval(poll)
      clearTimeout(timer)
    }
  }, [reload])
  return { data, error, reload }
}

/** The part of the URL after '#', and a setter. */
export function useRoute(): string {
  const [hash, setHash] = useState(location.hash.slice(1) || '/')
  useEffect(() => {
    const on = () => setHash(location.hash.slice(1) || '/')
    window.addEventListener('hashchange', on)
    return () => window.removeEventListener('hashchange', on)
  }, [])
  return hash
}

/** Whether the event stream is connected, live. */
export function useConnected(): boolean {
  const [c, setC] = useState(live.connected)
  useEffect(() => live.onStatus(setC), [])
  return c
}
