// A class body, not a compilation unit: Janino's ClassBodyDemo (bundled in
// flink-table-runtime) compiles it in the JVM it starts and calls main(); see
// jupyter_flink/flink/secure_gateway.py for why and for what to re-check on a Flink upgrade.
//
// Does what org.apache.flink.client.python.PythonGatewayServer.main does in Flink 2.3, except
// that the py4j GatewayServer (Python -> JVM) and its CallbackClient (JVM -> Python) require a
// random token. The token goes to Python through the connection-info file PyFlink already uses
// (in a 0700 directory Python created), after the port: never on a command line or in the
// environment, where other processes could read it.
import java.io.DataOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.lang.reflect.Method;
import java.net.InetAddress;
import java.security.SecureRandom;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.flink.api.python.shaded.py4j.CallbackClient;
import org.apache.flink.api.python.shaded.py4j.Gateway;
import org.apache.flink.api.python.shaded.py4j.GatewayServer;
import org.apache.flink.client.python.PythonGatewayServer;

public static void main(String[] args) throws Exception {
    byte[] random = new byte[32];
    new SecureRandom().nextBytes(random);
    StringBuilder hex = new StringBuilder();
    for (int i = 0; i < random.length; i++) {
        hex.append(Integer.toHexString((random[i] & 0xff) | 0x100).substring(1));
    }
    String token = hex.toString();
    InetAddress loopback = InetAddress.getLoopbackAddress();
    // Python replaces the callback port with its real one (PythonEnvUtils.resetCallbackClient,
    // which keeps the token: CallbackClient.copyWith).
    CallbackClient callback = new CallbackClient(GatewayServer.DEFAULT_PYTHON_PORT, loopback, token);
    GatewayServer server = new GatewayServer.GatewayServerBuilder()
        .gateway(new Gateway(new ConcurrentHashMap(), callback))
        .javaPort(0)
        .javaAddress(loopback)
        .authToken(token)
        .build();
    // Package-private in PythonEnvUtils: daemon threads for callbacks, and the server that
    // PyFlink's Java side looks up (PythonEnvUtils.getGatewayServer).
    Class utils = Class.forName("org.apache.flink.client.python.PythonEnvUtils");
    Method daemonThreads = utils.getDeclaredMethod("resetCallbackClientExecutorService",
        new Class[] {GatewayServer.class});
    daemonThreads.setAccessible(true);
    daemonThreads.invoke(null, new Object[] {server});
    server.start(true);
    int port = server.getListeningPort();
    if (port == -1) {
        System.out.println("GatewayServer failed to bind; exiting");
        System.exit(1);
    }
    Method setServer = utils.getDeclaredMethod("setGatewayServer", new Class[] {GatewayServer.class});
    setServer.setAccessible(true);
    setServer.invoke(null, new Object[] {server});

    File target = new File(System.getenv("_PYFLINK_CONN_INFO_PATH"));
    File partial = File.createTempFile("connection", ".info", target.getParentFile());
    DataOutputStream out = new DataOutputStream(new FileOutputStream(partial));
    out.writeInt(port);
    byte[] tokenBytes = token.getBytes("US-ASCII");
    out.writeInt(tokenBytes.length);
    out.write(tokenBytes);
    out.close();
    if (!partial.renameTo(target)) {
        System.out.println("Unable to write connection information; exiting");
        System.exit(1);
    }

    // As PythonGatewayServer: exit once the Python process stops answering the watchdog.
    try {
        Map entryPoint = (Map) server.getGateway().getEntryPoint();
        for (int i = 0; i < 100 && !entryPoint.containsKey("Watchdog"); i++) {
            Thread.sleep(100);
        }
        if (!entryPoint.containsKey("Watchdog")) {
            System.out.println("Unable to get the Python watchdog object, now exit.");
            System.exit(1);
        }
        PythonGatewayServer.Watchdog watchdog = (PythonGatewayServer.Watchdog) entryPoint.get("Watchdog");
        while (watchdog.ping()) {
            Thread.sleep(100);
        }
        server.shutdown();
        System.exit(0);
    } finally {
        System.exit(1);
    }
}
