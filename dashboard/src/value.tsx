/** Shows a task value (JSON, or tagged superjson) as preformatted text. */
import type { WireValue } from '../../lib/http/types.js'
import { show } from './format.js'

export function Value({ value, label }: { value: WireValue | undefined; label: string }) {
  const { text, types } = show(value)
  return (
    <figure class="value">
      <pre aria-label={label} tabIndex={0}>
        {text}
      </pre>
      {types.length > 0 && (
        <figcaption>superjson value with {types.join(', ')}, shown as JSON</figcaption>
      )}
    </figure>
  )
}
