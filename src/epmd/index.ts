// EPMD: the codec (messages), the client (register, portPlease, names, dump) and the embedded server.
export * from './errors.js'
export * from './messages.js'
export * from './client.js'
export * from './server.js'
