package com.example.greeting;

/** A greeting, published as a jar by the example's jar_release. */
public final class Greeting {
    private Greeting() {}

    public static String hello(String name) {
        return "hello, " + name;
    }
}
