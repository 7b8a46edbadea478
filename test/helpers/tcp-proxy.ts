// A TCP proxy on a free loopback port, used as a load balancer in front of several gateway
// processes and as a cuttable link between a gateway and PostgreSQL (the machine's PostgreSQL
// is shared with other tests and cannot be stopped: cutting the proxy is how a test makes the
// database unreachable for one gateway only).
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  port: number
  /** Connections accepted so far, per target port. */
  readonly connections: Map<number, number>
  /**
   * Sends new connections to this port, and closes the open ones so keep-alive clients move too
   * (resolves once the clients in this process have seen them close).
   */
  retarget: (port: number) => Promise<void>
  /** Closes every open connection and refuses new ones (each is closed at once), until `restore`. */
  cut: () => Promise<void>
  restore: () => void
  close: () => Promise<void>
}

export async function startTcpProxy (target: number): Promise<TcpProxy> {
  let current = target
  let down = false
  const open = new Set<Socket>()
  const connections = new Map<number, number>()
  const dropAll = async (): Promise<void> => {
    const closing = [...open].map(async (s) => await new Promise((resolve) => { s.once('close', resolve); s.destroy() }))
    await Promise.all(closing)
    // The FIN reaches a client of this process on a later turn of the event loop.
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const server: Server = createServer((client) => {
    client.on('error', () => {})
    if (down) {
      client.destroy()
      return
    }
    connections.set(current, (connections.get(current) ?? 0) + 1)
    const upstream = connect(current, '127.0.0.1')
    open.add(client)
    open.add(upstream)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => { resolve((server.address() as { port: number }).port) })
  })
  return {
    port,
    connections,
    retarget: async (p) => { current = p; await dropAll() },
    cut: async () => { down = true; await dropAll() },
    restore: () => { down = false },
    close: async () => {
      await dropAll()
      await new Promise((resolve) => { server.close(resolve) })
    }
  }
}
