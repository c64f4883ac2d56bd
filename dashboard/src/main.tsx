/**
 * The dashboard page: a header with the queues and the stream's state, and the view the URL's
 * hash names (#/ overview, #/tasks/<queue>, #/task/<queue>/<id>, #/submit/<queue>). When the
 * server asks for a token, a sign-in form keeps it for this tab.
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import type { ConfigJson } from '../../lib/http/types.js'
import { api, ApiError, setToken, whenUnauthorized } from './api.js'
import { live } from './events.js'
import { useConnected, useRoute } from './hooks.js'
import { Overview } from './overview.js'
import { Submit } from './submit.js'
import { TaskPage } from './task.js'
import { Tasks } from './tasks.js'

function SignIn({ onDone, failed }: { onDone: () => void; failed: boolean }) {
  const [value, setValue] = useState('')
  return (
    <main class="sign-in">
      <h1>worq dashboard</h1>
      <form
        class="form"
        onSubmit={e => {
          e.preventDefault()
          setToken(value.trim())
          onDone()
        }}
      >
        <label>
          Token
          <input
            type="password"
            autoComplete="current-password"
            value={value}
            onInput={e => setValue((e.target as HTMLInputElement).value)}
          />
        </label>
        {failed && <p role="alert">That token was not accepted.</p>}
        <p class="muted">
          This server needs the token it was started with. It is kept for this tab only.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </main>
  )
}

function View({ route, config }: { route: string; config: ConfigJson }) {
  const [path, search = ''] = route.split('?')
  const parts = (path ?? '/').split('/').filter(Boolean).map(decodeURIComponent)
  const params = new URLSearchParams(search)
  if (parts[0] === 'tasks' && parts[1])
    return <Tasks key={parts[1]} queue={parts[1]} params={params} />
  if (parts[0] === 'task' && parts[1] && parts[2])
    return <TaskPage key={parts[2]} queue={parts[1]} id={parts[2]} readOnly={config.readOnly} />
  if (parts[0] === 'submit' && parts[1] && !config.readOnly) return <Submit queue={parts[1]} />
  return <Overview config={config} />
}

function App() {
  const route = useRoute()
  const connected = useConnected()
  const [config, setConfig] = useState<ConfigJson>()
  const [signIn, setSignIn] = useState<'no' | 'ask' | 'failed'>('no')
  const [error, setError] = useState<string>()
  const load = () =>
    api.config().then(
      c => {
        setConfig(c)
        setSignIn('no')
        live.start()
      },
      (e: Error) => {
        if (e instanceof ApiError && e.status === 401) {
          setSignIn(s => (s === 'no' ? 'ask' : 'failed'))
          setToken(null)
        } else setError(e.message)
      },
    )
  useEffect(() => {
    void load()
    return whenUnauthorized(() => setSignIn('ask'))
  }, [])
  if (signIn !== 'no') return <SignIn failed={signIn === 'failed'} onDone={() => void load()} />
  if (!config)
    return <main>{error ? <p role="alert">{error}</p> : <p aria-busy="true">Loading…</p>}</main>
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          worq
        </a>
        <nav aria-label="Queues">
          <a href="#/">Overview</a>
          {config.queues.map(q => (
            <a key={q} href={`#/tasks/${encodeURIComponent(q)}`}>
              {q}
            </a>
          ))}
        </nav>
        <span class={connected ? 'live on' : 'live'} role="status">
          {connected ? 'live' : 'reconnecting (polling every 5 s)'}
        </span>
      </header>
      <View route={route} config={config} />
    </>
  )
}

render(<App />, document.getElementById('app')!)
