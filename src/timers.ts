// setTimeout for any delay: Node fires a timer at once (TimeoutOverflowWarning) past 2^31 - 1 ms (about 24.8
// days), so a longer wait is armed in steps until its deadline.

/** The longest delay setTimeout takes as given. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Runs fn after ms milliseconds (any finite ms); clear() cancels it. The timer keeps the process alive. */
export function longTimeout(fn: () => void, ms: number): { clear(): void } {
  const deadline = Date.now() + ms
  let timer: NodeJS.Timeout
  const arm = (left: number) => {
    timer = setTimeout(() => {
      const rest = deadline - Date.now()
      if (rest > 0) arm(rest)
      else fn()
    }, Math.min(left, MAX_TIMER_MS))
  }
  arm(ms)
  return { clear: () => clearTimeout(timer) }
}
