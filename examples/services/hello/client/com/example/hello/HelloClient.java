package com.example.hello;

/** A client library for the hello service, released as a jar next to its image. */
public final class HelloClient {
    private HelloClient() {}

    public static String path() {
        return "/hello";
    }
}
